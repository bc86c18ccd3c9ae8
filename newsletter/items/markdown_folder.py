"""A folder of Markdown files with front matter: one item per file.

Files ending in ``.md`` or ``.markdown`` anywhere under the folder are read, in
path order; hidden files and folders (a leading dot) are skipped. The front
matter (YAML between ``---`` lines, or JSON) may give:

  title, date, kind, url, summary, tags, language, link_text,
  image, image_alt, image_width, image_height, translation_of, key

(``translation_of`` names the file this one translates, ``key`` a name shared by
the language versions of one piece: see newsletter.items.translations.)

``date`` is a YAML date, ``YYYY-MM-DD``, ``YYYY-MM`` or a listing's date-line
spelling; without one the import's ``--date`` month is used, else the file is
reported and skipped. Without a title, a leading ``#`` heading of the body is the
title, else it is derived from the first sentence (`prose`). Without a summary,
it is derived from the body's first paragraph. An unknown key, kind, language or
url is reported as a warning naming the file and line, and the file is still
imported without that value. ``image`` is an absolute http(s) address shown
with the item; ``image_alt`` says what it shows, for those who cannot see it
(without it the import warns and `newsletter check` flags it); its size in
pixels sets the width and height in the email. The body is rendered with the `markdown` package
and sanitised (`markup`).

The source id is the file's path relative to the folder ("2019/june-report.md"),
for messages; a re-import recognises an item by its ``url``, else by its month
and title (rule in `identity`), so renaming or moving a file changes nothing.

A file is outside text, and some shapes of text cost the Markdown and YAML
parsers far more than their size: lists nested hundreds deep exhaust Python's
recursion, thousands of ``[`` in one paragraph take time that grows with
their square, and YAML aliases can expand a few lines into billions of
values. So the work is bounded before it starts: a file of more than
`MAX_FILE_BYTES`, a line indented more than `MAX_INDENT_COLUMNS` (lists or
quotes nested too deep), a paragraph with more than `MAX_BRACKETS` ``[``, or
front matter that uses a YAML alias (``*name``) or nests too deep is reported
as rejected, in one line naming the file, and the rest of the folder is
imported. No warning quotes more than a short piece of a value.
"""

from __future__ import annotations

import os
import re
import reprlib
from pathlib import Path
from typing import Any

import frontmatter
import markdown
import yaml

from newsletter.items.classify import normalise_kind
from newsletter.items.dates import names_only_a_month, parse_item_date
from newsletter.items.detect import is_url
from newsletter.items.markup import html_to_paragraphs, sanitise
from newsletter.items.parsed import ParsedItem, ParseResult, Problem, normalise_language
from newsletter.items.prose import derive_title, summarise
from newsletter.models.items import ITEM_KINDS

# The bounds described in the module docstring. An item is a page of news: these are
# many times what a real one needs, and far below what makes the parsers slow.
MAX_FILE_BYTES = 512 * 1024
MAX_INDENT_COLUMNS = 96
MAX_QUOTE_DEPTH = 24
MAX_BRACKETS = 500
# Longest piece of a front matter value a warning quotes.
QUOTE_CHARS = 60

FRONT_MATTER_KEYS = (
    "title",
    "date",
    "kind",
    "url",
    "summary",
    "tags",
    "language",
    "link_text",
    "translation_of",
    "key",
    "image",
    "image_alt",
    "image_width",
    "image_height",
)
SUFFIXES = (".md", ".markdown")
_HEADING = re.compile(r"^\s*#{1,2}\s+(?P<title>.+?)\s*#*\s*$")
_LINK = re.compile(r"^(?:https?://\S+|mailto:\S+)$")


def markdown_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def parse_markdown_folder(folder: Path, *, label: str, month: Any = None) -> ParseResult:
    """Read every Markdown file under `folder`; a bad file is a problem, never an exception."""
    result = ParseResult()
    files = markdown_files(folder)
    if not files:
        result.problems.append(Problem(label, "no Markdown files (*.md) in this folder"))
    for path in files:
        relative = path.relative_to(folder).as_posix()
        before = len(result.problems)
        _parse_file(path, relative, os.path.join(label, relative), month, result)
        # One file's problems in the order of its lines, whatever order they were found in.
        result.problems[before:] = sorted(result.problems[before:], key=lambda p: p.line or 0)
    return result


class _Skip(Exception):
    """A file that cannot become an item; the problem is already recorded."""


def _parse_file(path: Path, source_id: str, where: str, month: Any, result: ParseResult) -> None:
    def report(message: str, line: int | None = None, severity: str = "error") -> None:
        place = f"{where}:{line}" if line else where
        result.problems.append(Problem(place, message, severity, line))  # type: ignore[arg-type]

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            report(
                f"the file is {size // 1024} KB, more than an item can be "
                f"({MAX_FILE_BYTES // 1024} KB); the file was not imported"
            )
            return
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        report(f"cannot read the file: {exc.strerror or exc}; it was not imported")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        report(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02X}); the file was not imported. "
            "Save it as UTF-8 and import it again.",
            line,
        )
        return
    try:
        meta, content, body_line = _split_front_matter(text)
    except _FrontMatterError as exc:
        report(f"{exc.message}; the file was not imported", exc.line)
        return

    def key_line(key: str) -> int | None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*:", re.MULTILINE)
        found = pattern.search(text[: len(text) - len(content)])
        return text[: found.start()].count("\n") + 1 if found else None

    def warn(key: str, message: str) -> None:
        report(message, key_line(key), "warning")

    for key in meta:
        if key not in FRONT_MATTER_KEYS:
            warn(
                key,
                f"unknown front matter key {_quote(key)} ignored "
                f"(known: {', '.join(FRONT_MATTER_KEYS)})",
            )

    title = _text_value(meta, "title", warn)
    heading = _leading_heading(content)
    if heading is not None and not title:
        title = heading[0]
        content = heading[1]
    too_costly = _too_costly(content)
    if too_costly is not None:
        message, line = too_costly
        report(f"{message}; the file was not imported", body_line + line - 1)
        return
    try:
        body_html = sanitise(markdown.markdown(content, extensions=["extra", "sane_lists"]))
    except RecursionError:
        report("the text is nested too deeply to be read; the file was not imported", body_line)
        return
    paragraphs = html_to_paragraphs(body_html)
    summary = _text_value(meta, "summary", warn)
    if not (title or summary or paragraphs):
        report("the file has no text (no title, summary or body); it was not imported", body_line)
        return
    title = title or derive_title(summary or paragraphs[0])
    summary = summary or (summarise(paragraphs[0]) if paragraphs else "")

    if "date" in meta:
        day = parse_item_date(meta["date"])
        if day is None:
            report(
                f"date {_quote(meta['date'])} is not a date (write YYYY-MM-DD or YYYY-MM); "
                "the file was not imported",
                key_line("date"),
            )
            return
    elif month is not None:
        day = month
    else:
        report(
            "no date in the front matter, so the file was not imported; add 'date: YYYY-MM-DD' "
            "or give its month with --date YYYY-MM",
            1,
        )
        return

    kind = None
    if meta.get("kind") is not None:
        kind = normalise_kind(str(meta["kind"]))
        if kind is None:
            warn(
                "kind",
                f"unknown kind {_quote(meta['kind'])} (known: {', '.join(ITEM_KINDS)}); "
                "the kind is inferred from its words instead",
            )
    language = None
    if meta.get("language") is not None:
        language = normalise_language(str(meta["language"]))
        if language is None:
            warn(
                "language",
                f"language {_quote(meta['language'])} is not a language code such as "
                "'en'; the import's language is used instead",
            )
    link = _text_value(meta, "url", warn)
    if link and not _LINK.match(link):
        warn("url", f"url {_quote(link)} is not an http(s) or mailto address; it was left out")
        link = ""

    image = _text_value(meta, "image", warn)
    if image and not is_url(image):
        warn("image", f"image {image!r} is not an absolute http(s) address; it was left out")
        image = ""
    image_alt = _text_value(meta, "image_alt", warn)
    if image and not image_alt:
        warn("image", "image without image_alt: say what it shows, for readers who cannot see it")
    width, height = _size(meta, "image_width", warn), _size(meta, "image_height", warn)

    result.items.append(
        ParsedItem(
            source_id=source_id,
            title=title,
            date=day,
            summary=summary,
            body_html=body_html,
            body_text="\n\n".join(paragraphs),
            link=link,
            image=image,
            image_alt=image_alt if image else "",
            image_width=width if image else None,
            image_height=height if image else None,
            link_text=_text_value(meta, "link_text", warn),
            kind=kind,
            language=language,
            tags=_tags(meta.get("tags"), lambda m: warn("tags", m)),
            translation_of=_text_value(meta, "translation_of", warn),
            translation_key=_text_value(meta, "key", warn)[:200],
            where=where,
            dated_by_source="date" in meta,
            month_only="date" not in meta or names_only_a_month(meta["date"]),
        )
    )


def _size(meta: dict[str, Any], key: str, warn: Any) -> int | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 5000:
        return value
    warn(key, f"{key} {value!r} is not a size in pixels (1-5000); it was left out")
    return None


class _FrontMatterError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """(metadata, body, line the body starts on); _FrontMatterError when it is not readable."""
    handler = frontmatter.detect_format(text, frontmatter.handlers)
    if handler is None:
        return {}, text, 1
    try:
        raw, content = handler.split(text)
    except ValueError:
        # An opening "---" with no closing one: python-frontmatter cannot split it.
        raise _FrontMatterError("the front matter has no closing '---' line", 1) from None
    body_line = text[: len(text) - len(content)].count("\n") + 1
    try:
        if not raw.strip():
            meta = {}
        elif isinstance(handler, frontmatter.YAMLHandler):
            meta = _load_yaml(raw)
        else:
            meta = handler.load(raw)
    except RecursionError:
        raise _FrontMatterError("front matter is nested too deeply", 1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        # Some of PyYAML's messages (a control character, say) run over several lines.
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())[:200]
        # The YAML text starts with the newline after the opening "---", so the
        # parser's 0-based line is the file's 1-based one.
        raise _FrontMatterError(
            f"front matter is not valid YAML: {problem}", mark.line + 1 if mark else 1
        ) from None
    except ValueError as exc:  # JSON front matter
        raise _FrontMatterError(f"front matter is not valid JSON: {exc}", 1) from None
    if not isinstance(meta, dict):
        raise _FrontMatterError(
            "front matter must be keys and values (title: …, date: …), "
            f"not a {type(meta).__name__}",
            2,
        )
    return {str(k): v for k, v in meta.items()}, content, body_line


# The loader python-frontmatter itself uses: the C one when PyYAML has it.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(raw: str) -> Any:
    """YAML's safe loader, refusing aliases: front matter needs none, and a few nested
    aliases expand into billions of values (the "billion laughs"). The events are
    looked at first, which costs one pass and builds nothing."""
    for event in yaml.parse(raw, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in front matter", event.start_mark
            )
    return yaml.load(raw, Loader=_YAML_LOADER)


def _too_costly(content: str) -> tuple[str, int] | None:
    """(why, line in `content`) when the Markdown is shaped to cost far more than its size."""
    brackets = 0
    paragraph_line = 1
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            brackets, paragraph_line = 0, number + 1
            continue
        indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
        if indent > MAX_INDENT_COLUMNS:
            return (
                f"a line is indented {indent} columns (lists or code nested too deep; "
                f"at most {MAX_INDENT_COLUMNS})",
                number,
            )
        quotes = len(line) - len(line.lstrip("> \t"))
        if line.lstrip().startswith(">") and line[:quotes].count(">") > MAX_QUOTE_DEPTH:
            return f"quotes nested more than {MAX_QUOTE_DEPTH} deep", number
        brackets += line.count("[")
        if brackets > MAX_BRACKETS:
            return (
                f"a paragraph has more than {MAX_BRACKETS} '[' characters "
                "(links are written [text](address))",
                paragraph_line,
            )
    return None


def _quote(value: Any) -> str:
    """A value as a warning quotes it: short, however long (or expanded) the value is."""
    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = QUOTE_CHARS
    shorter.maxlevel, shorter.maxlist, shorter.maxdict = 2, 4, 4
    text = shorter.repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def _leading_heading(content: str) -> tuple[str, str] | None:
    """(heading, body without it) when the body opens with a level 1 or 2 heading."""
    lines = content.lstrip("\n").split("\n")
    match = _HEADING.match(lines[0]) if lines else None
    if match is None:
        return None
    return match.group("title"), "\n".join(lines[1:])


def _text_value(meta: dict[str, Any], key: str, warn: Any) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return " ".join(str(value).split())
    warn(key, f"{key} must be text, not a {type(value).__name__}; it was left out")
    return ""


def _tags(value: Any, warn: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str | int) for t in value):
        return [str(t).strip() for t in value if str(t).strip()]
    warn(
        f"tags must be a list of words or a comma-separated text, not {_quote(value)}; "
        "they were left out"
    )
    return []
