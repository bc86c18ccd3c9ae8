"""A folder of Markdown files with front matter: one item per file.

Files ending in ``.md`` or ``.markdown`` anywhere under the folder are read, in
path order; hidden files and folders (a leading dot) are skipped. The front
matter (YAML between ``---`` lines, or JSON) may give:

  title, date, kind, url, summary, tags, language, link_text,
  translation_of, key

(``translation_of`` names the file this one translates, ``key`` a name shared by
the language versions of one piece: see newsletter.items.translations.)

``date`` is a YAML date, ``YYYY-MM-DD``, ``YYYY-MM`` or a listing's date-line
spelling; without one the import's ``--date`` month is used, else the file is
reported and skipped. Without a title, a leading ``#`` heading of the body is the
title, else it is derived from the first sentence (`prose`). Without a summary,
it is derived from the body's first paragraph. An unknown key, kind, language or
url is reported as a warning naming the file and line, and the file is still
imported without that value. The body is rendered with the `markdown` package
and sanitised (`markup`).

The source id is the file's path relative to the folder ("2019/june-report.md"),
so renaming a file makes a new item.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import frontmatter
import markdown
import yaml

from newsletter.items.classify import normalise_kind
from newsletter.items.dates import parse_item_date
from newsletter.items.markup import html_to_paragraphs, sanitise
from newsletter.items.parsed import ParsedItem, ParseResult, Problem, normalise_language
from newsletter.items.prose import derive_title, summarise
from newsletter.models.items import ITEM_KINDS

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
        data = path.read_bytes()
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
                f"unknown front matter key {key!r} ignored (known: {', '.join(FRONT_MATTER_KEYS)})",
            )

    title = _text_value(meta, "title", warn)
    heading = _leading_heading(content)
    if heading is not None and not title:
        title = heading[0]
        content = heading[1]
    body_html = sanitise(markdown.markdown(content, extensions=["extra", "sane_lists"]))
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
                f"date {meta['date']!r} is not a date (write YYYY-MM-DD or YYYY-MM); "
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
                f"unknown kind {meta['kind']!r} (known: {', '.join(ITEM_KINDS)}); "
                "the kind is inferred from its words instead",
            )
    language = None
    if meta.get("language") is not None:
        language = normalise_language(str(meta["language"]))
        if language is None:
            warn(
                "language",
                f"language {meta['language']!r} is not a language code such as "
                "'en'; the import's language is used instead",
            )
    link = _text_value(meta, "url", warn)
    if link and not _LINK.match(link):
        warn("url", f"url {link!r} is not an http(s) or mailto address; it was left out")
        link = ""

    result.items.append(
        ParsedItem(
            source_id=source_id,
            title=title,
            date=day,
            summary=summary,
            body_html=body_html,
            body_text="\n\n".join(paragraphs),
            link=link,
            link_text=_text_value(meta, "link_text", warn),
            kind=kind,
            language=language,
            tags=_tags(meta.get("tags"), lambda m: warn("tags", m)),
            translation_of=_text_value(meta, "translation_of", warn),
            translation_key=_text_value(meta, "key", warn)[:200],
            where=where,
        )
    )


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
    raw, content = handler.split(text)
    body_line = text[: len(text) - len(content)].count("\n") + 1
    try:
        meta = handler.load(raw) if raw.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
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
        f"tags must be a list of words or a comma-separated text, not {value!r}; they were left out"
    )
    return []
