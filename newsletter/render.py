"""Stage 1 of rendering: an edition's HTML and text, once per campaign and language.

Jinja2 renders the campaign's templates (the bundled ones, or staff's own from
``editions.templates_dir``, a file missing there falling back to the bundled
one), and premailer inlines the CSS once. What stays open are the personal
fields (`PERSONAL_FIELDS`): they are rendered as unique sentinel strings, and
the output is then cut at the sentinels into literal chunks and field names.
Stage 2 (newsletter.message) only joins those chunks with each recipient's
escaped values: premailer costs tens of milliseconds a page, and per recipient
it would cap a send at a few dozen messages a second.

A personal field can therefore only be printed as it is: a filter (``|upper``)
would change the sentinel and a test (``{% if name %}``) cannot know the value
yet. Tests on a personal field fail when the edition is built; a filter is
caught by looking for mangled sentinels. `greeting` exists so that templates
need no ``{% if name %}``. templates/README.md documents all of this for staff.

Every template mistake (syntax, an undefined name, a bad filter) is raised as
an InputError naming the template file and line, when the edition is built or
previewed, never in the middle of a send.
"""

from __future__ import annotations

import logging
import re
import secrets
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

import jinja2
import nh3
import premailer
from markupsafe import Markup
from sqlalchemy.orm import Session, selectinload

from newsletter import links, locale
from newsletter.app import Newsletter, bundled_path
from newsletter.brand import brand_style
from newsletter.clicks import count_links
from newsletter.config import Config, EditionsConfig
from newsletter.errors import ConfigError, InputError, NotFound
from newsletter.items.translations import language_versions, version_for
from newsletter.models import Campaign, CampaignItem, Item
from newsletter.snapshot import Content, FrozenItem, content_of

# The fields every campaign template may print per recipient.
PERSONAL_FIELDS = (
    "name",
    "greeting",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_online_url",
)
# The fields of the subscription confirmation email.
CONFIRMATION_FIELDS = ("name", "greeting", "email", "confirm_url")

SAFE_LINK_SCHEMES = ("https://", "http://", "mailto:")
# The section headings the config comes with; these are translated, a heading staff set
# is printed as they wrote it.
BUILTIN_SECTION_TITLES = EditionsConfig().section_titles
FALLBACK_LANGUAGE = locale.FALLBACK
PREHEADER_LENGTH = 140
# The content column: 600 pixels less 32 on each side (templates/base.html).
IMAGE_MAX_WIDTH = 536


# What stage 1 hands to stage 2 -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonalTemplate:
    """Rendered output with its personal fields still open.

    `literals` has one more entry than `fields`: the output is literals[0],
    the value of fields[0], literals[1], … literals[-1].
    """

    literals: tuple[str, ...]
    fields: tuple[str, ...]

    def fill(self, values: Mapping[str, str]) -> str:
        """The output with each field replaced by its value (already escaped as needed)."""
        parts = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            parts.append(values[field])
            parts.append(literal)
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """An email's HTML (CSS inlined) and text, the same for every recipient but the fields."""

    subject: str
    language: str
    html: PersonalTemplate
    text: PersonalTemplate
    # The template files used, for messages: (HTML template, text template).
    template_names: tuple[str, str]

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """(HTML, text) for one recipient; values are raw, escaped here for the HTML."""
        escaped = {k: escape(v, quote=True) for k, v in values.items()}
        return self.html.fill(escaped), self.text.fill(values)


@dataclass(frozen=True, slots=True)
class RenderedEdition(RenderedEmail):
    """A campaign rendered for one language: stage 1's result."""

    campaign_id: int
    kind: str
    preheader: str
    view_online_url: str
    # How `greeting` greets (Campaign.greeting): "" for the language's own, "none" for
    # no greeting (also when the intro already greets), else a line with {name}.
    greeting_style: str = ""


# What templates see ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    kind: str
    kind_title: str
    title: str
    date: date
    date_text: str
    summary: str
    summary_paragraphs: list[str]
    body_text: str
    body_paragraphs: list[str]
    body_html: Markup
    link: str
    link_text: str
    # The language the item is shown in: the reader's when it has a version in it.
    language: str
    # "In Russian", in the reader's language, when the item is not in the reader's
    # language (it has no version in it); empty otherwise.
    language_note: str
    tags: list[str]
    # The item's image (empty for none) and the size it is shown at: at most the column's
    # width, the height to scale (0 when the source gave no size).
    image: str = ""
    image_alt: str = ""
    image_width: int = 0
    image_height: int = 0


@dataclass(frozen=True, slots=True)
class Section:
    kind: str
    title: str
    items: list[ItemView]


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: int
    kind: str
    month: str
    month_name: str
    subject: str
    language: str


# The front door ----------------------------------------------------------------------------


def render_campaign(
    app: Newsletter,
    campaign_id: int,
    language: str | None = None,
    *,
    public: bool = False,
    test: bool = False,
    session: Session | None = None,
) -> RenderedEdition:
    """Render a campaign's HTML and text once, for `language` (default: the campaign's).

    An approved campaign renders the snapshot its approval froze (newsletter.snapshot),
    a draft its items as they are now. `public` renders the copy anyone may read in
    the archive: templates see `public_copy` and word the footer for a reader who is
    not a subscriber, and there is no "view in your browser" link. `test` marks a
    test send or a staff preview: "[TEST]" before the subject and a banner
    (`test_notice`) saying what it is and how to approve it. `session` renders
    inside the caller's transaction (an edit checks that the result still renders
    before it commits).
    """
    if session is None:
        with app.session() as own:
            return render_campaign(
                app, campaign_id, language, public=public, test=test, session=own
            )
    config = app.config
    campaign = session.get(
        Campaign,
        campaign_id,
        options=[
            selectinload(Campaign.entries).selectinload(CampaignItem.item),
            selectinload(Campaign.texts),
        ],
    )
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    # An approved campaign renders what its approval froze; a draft, its live content.
    content = content_of(campaign)
    kind = campaign.kind
    default = campaign.language or config.editions.default_language
    lang = locale.base_language(language) or default
    originals = list(content.items)
    # Other languages' versions are read as they are now: a version may be added or
    # corrected after the edition was built. The originals are what was approved.
    versions = language_versions(session, [item.id for item in originals])
    items = [
        _item_view(version_for(item, versions.get(item.id, ()), lang), item, config, lang)
        for item in originals
    ]
    month_name = ""
    if campaign.month:
        year, number = (int(part) for part in campaign.month.split("-"))
        month_name = locale.month_label(year, number, lang)
    subject, intro, preheader = _texts(campaign, content, lang, default, config, originals, items)
    view = CampaignView(
        id=campaign.id,
        kind=kind,
        month=campaign.month,
        month_name=month_name,
        subject=f"[TEST] {subject}" if test else subject,
        language=lang,
    )
    notice = staff_test_notice(campaign.id, campaign.status) if test else ""
    if kind not in ("bulletin", "announcement"):
        raise InputError(f"campaign {campaign_id}: cannot render a campaign of kind {kind!r}")

    intro_paragraphs = paragraphs(intro)
    preheader = preheader.strip() or _default_preheader(intro_paragraphs, items)
    view_url = links.view_online_url(config, links.view_online_token(app.signing_key, campaign_id))
    if lang != default:
        # The web copy of the email opens in the language the email was in.
        view_url += f"?lang={lang}"
    context: dict[str, Any] = {
        **_common_context(config, lang),
        "campaign": view,
        "subject": view.subject,
        "month_name": view.month_name,
        "preheader": preheader,
        "intro": intro,
        "intro_paragraphs": intro_paragraphs,
        "items": items,
        "item": items[0] if items else None,
        "sections": group_sections(items, config.editions, lang),
        "public_copy": public,
        "test_notice": notice,
    }
    html, text, names = _render_pair(config, kind, lang, context, PERSONAL_FIELDS)
    if config.privacy.count_clicks and not public:
        # Counted links (newsletter.clicks) in the messages only; the public copy and
        # the text part keep the real addresses.
        html = PersonalTemplate(count_links(app, session, campaign_id, html.literals), html.fields)
    return RenderedEdition(
        subject=view.subject,
        language=lang,
        html=html,
        text=text,
        template_names=names,
        campaign_id=campaign_id,
        kind=kind,
        preheader=preheader,
        view_online_url=view_url,
        greeting_style="none" if intro_greets(intro) and not content.greeting else content.greeting,
    )


def staff_test_notice(campaign_id: int, status: str) -> str:
    """The banner of a test send or staff preview: what it is, and the next step."""
    what = (
        f"TEST: a staff preview of campaign {campaign_id} ({status}); subscribers have not got it."
    )
    if status == "draft":
        return f"{what} Approve it with: newsletter approve {campaign_id}"
    if status in ("approved", "scheduled"):
        return f"{what} It is approved; send it with: newsletter send {campaign_id}"
    return what


def render_notice(
    config: Config,
    template: str,
    fields: Sequence[str],
    language: str,
    subject: str,
    **context: Any,
) -> RenderedEmail:
    """A notice's HTML and text (newsletter.notices), with `fields` left open for stage 2."""
    full: dict[str, Any] = {
        **_common_context(config, language),
        "subject": subject,
        "preheader": subject,
        **context,
    }
    html, text, names = _render_pair(config, template, language, full, fields)
    return RenderedEmail(
        subject=subject, language=language, html=html, text=text, template_names=names
    )


# Building the context ----------------------------------------------------------------------


def greeting(name: str, language: str, style: str = "") -> str:
    """The greeting line for a recipient, in their language: with their name when we have one.

    `style` is a campaign's greeting (Campaign.greeting): "" for the language's
    own, "none" for none, else staff's line, where {name} is the name (left out,
    with the space before it, when there is none: "Hi {name}," → "Hi,").
    """
    if style == "none":
        return ""
    if style:
        if name:
            return style.replace("{name}", name)
        return re.sub(r"\s*\{name\}", "", style)
    _ = locale.translator(language)
    if name:
        return _("email.greeting.named", name=name)
    return _("email.greeting.anonymous")


# An intro that opens with one of these already greets; the greeting line is then left
# out rather than doubled ("Dear Ana," above "Dear friends, …").
_GREETS = re.compile(
    r"^\W*(?:dear|hello|hi|greetings|good\s+(?:morning|afternoon|evening)|bonjour|bonsoir"
    r"|cher|chers|chère|chères|hola|estimad[oa]s?|querid[oa]s?|здравствуйте|привет"
    r"|уважаем\w*|дорог\w*)\b",
    re.IGNORECASE,
)


def intro_greets(intro: str) -> bool:
    """Whether an intro opens with a greeting of its own."""
    return bool(_GREETS.match(intro.strip()))


def paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, each on one line."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [" ".join(block.split()) for block in blocks if block.strip()]


def group_sections(
    items: Iterable[ItemView], editions: EditionsConfig, language: str = ""
) -> list[Section]:
    """Items grouped by kind in editions.kind_order; kinds not listed come last, in order met.

    Within a section items keep the campaign's order; headings are in `language`.
    """
    by_kind: dict[str, list[ItemView]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    order = [k for k in editions.kind_order if k in by_kind]
    order += [k for k in by_kind if k not in order]
    return [
        Section(kind=k, title=_kind_title(k, editions, language), items=by_kind[k]) for k in order
    ]


def _kind_title(kind: str, editions: EditionsConfig, language: str = "") -> str:
    """A section's heading: a title staff set in `editions.section_titles` as they wrote it,
    a built-in one in the reader's language (catalogue id `email.section.<kind>`)."""
    title = editions.section_titles.get(kind)
    builtin = BUILTIN_SECTION_TITLES.get(kind)
    _ = locale.translator(language or FALLBACK_LANGUAGE)
    if title is not None and title == builtin and _.has(f"email.section.{kind}"):
        return _(f"email.section.{kind}")
    return title or kind.replace("_", " ").capitalize()


def _texts(
    campaign: Campaign,
    content: Content,
    lang: str,
    default: str,
    config: Config,
    originals: Sequence[Item | FrozenItem],
    items: Sequence[ItemView],
) -> tuple[str, str, str]:
    """The subject, intro and preheader of `campaign` in `lang`.

    Each from the campaign's texts in that language when given; else the
    default language's. A subject the edition was built with from the config's
    pattern is written again in `lang` (its month, or its item's version's
    title), so that a reader sees no other language's subject than the one
    staff wrote themselves.
    """
    own = next((t for t in campaign.texts if t.language == lang), None)
    intro = (own.intro if own and own.intro else "") or content.intro
    preheader = own.preheader if own and own.preheader else ""
    if not preheader and lang == default:
        preheader = content.preheader
    if own and own.subject:
        return own.subject, intro, preheader
    subject = content.subject
    if lang == default:
        return subject, intro, preheader
    org = config.org.name
    editions = config.editions
    _ = locale.translator(lang)
    if campaign.kind == "bulletin" and campaign.month:
        year, number = (int(part) for part in campaign.month.split("-"))
        built = editions.subject_pattern.format(
            org=org, month=locale.month_label(year, number, default)
        )
        if subject == built:
            subject = _(
                "email.bulletin.subject", org=org, month=locale.month_label(year, number, lang)
            )
    elif campaign.kind == "announcement" and originals and items:
        pattern = editions.announcement_subject_pattern
        if subject == pattern.format(org=org, title=originals[0].title):
            subject = pattern.format(org=org, title=items[0].title)
    return subject, intro, preheader


def _item_view(
    item: Item | FrozenItem, original: Item | FrozenItem, config: Config, language: str
) -> ItemView:
    """What templates see of `item` (the version in `language`, or `original` itself)."""
    editions = config.editions
    note = ""
    if locale.base_language(item.language) != language:
        _ = locale.translator(language)
        note = _(
            "email.item.language_note",
            language=locale.language_name(item.language, language, capital=False),
        )
    link = item.link.strip()
    if not link.lower().startswith(SAFE_LINK_SCHEMES):
        # Only web and mail links reach a message; a javascript: or data: link from a
        # feed would be an attack on the reader, and a relative one leads nowhere.
        link = ""
    return ItemView(
        id=original.id,
        kind=original.kind,
        kind_title=_kind_title(original.kind, editions, language),
        title=item.title,
        date=item.date,
        # A date the source gave only as a month shows as that month, not as its first day.
        date_text=(
            locale.month_label(item.date.year, item.date.month, language)
            if item.date_is_month
            else locale.format_date(item.date, language)
        ),
        summary=item.summary,
        summary_paragraphs=paragraphs(item.summary),
        body_text=item.body_text,
        body_paragraphs=paragraphs(item.body_text),
        # Sanitised when imported; cleaned again here because it is marked safe for Jinja
        # and reaches every reader's mail client.
        body_html=Markup(nh3.clean(item.body_html)),
        link=link,
        link_text=item.link_text,
        language=item.language,
        language_note=note,
        tags=list(item.tags or []),
        **_image_fields(item),
    )


def _image_fields(item: Item | FrozenItem) -> dict[str, Any]:
    """An item's image at the size the email shows it: the column's width at most."""
    if not item.image.lower().startswith(("https://", "http://")):
        return {}
    width = min(item.image_width or IMAGE_MAX_WIDTH, IMAGE_MAX_WIDTH)
    height = 0
    if item.image_width and item.image_height:
        height = round(item.image_height * width / item.image_width)
    return {
        "image": item.image,
        "image_alt": item.image_alt,
        "image_width": width,
        "image_height": height,
    }


def _common_context(config: Config, lang: str) -> dict[str, Any]:
    return {
        # The words of the templates: {{ _("email.footer.unsubscribe") }} (newsletter.locale).
        "_": locale.translator(lang),
        "org": config.org,
        "brand": brand_style(config.brand, config.org.name),
        "lang": lang,
        "dir": locale.direction(lang),
        "website": config.org.website,
        "archive_url": links.archive_url(config),
        "public_copy": False,
        "test_notice": "",
    }


def _default_preheader(intro_paragraphs: list[str], items: list[ItemView]) -> str:
    text = intro_paragraphs[0] if intro_paragraphs else "; ".join(i.title for i in items)
    if len(text) <= PREHEADER_LENGTH:
        return text
    return text[: PREHEADER_LENGTH - 1].rsplit(" ", 1)[0] + "…"


# Rendering ---------------------------------------------------------------------------------


class PersonalField(str):
    """A personal field's sentinel as templates see it: it prints, and nothing else works.

    A test on it (``{% if name %}``, ``|length``) would see the sentinel, not the value that
    stage 2 fills in, so it raises while the edition is built, with the template's line.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        raise jinja2.TemplateRuntimeError(
            "a personal field cannot be tested with if or measured; "
            "print it as it is (use greeting instead of testing name)"
        )

    def __len__(self) -> int:
        raise jinja2.TemplateRuntimeError("a personal field cannot be measured; print it as it is")


def template_environment(config: Config) -> jinja2.Environment:
    """Staff's templates_dir first (when set), the bundled templates second."""
    bundled = bundled_path("templates")
    search = [bundled]
    if config.editions.templates_dir:
        custom = config.resolve_path(config.editions.templates_dir)
        if not custom.is_dir():
            raise ConfigError(
                f"{config.source}: editions.templates_dir: folder {custom} does not exist"
            )
        search.insert(0, custom)
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(path)) for path in search])
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "htm"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _render_pair(
    config: Config,
    kind: str,
    lang: str,
    context: dict[str, Any],
    fields: Sequence[str],
) -> tuple[PersonalTemplate, PersonalTemplate, tuple[str, str]]:
    env = template_environment(config)
    nonce = secrets.token_hex(6)
    sentinels = {field: PersonalField(f"nlf{nonce}x{field}x{nonce}nlf") for field in fields}
    pattern = re.compile(f"nlf{nonce}x([a-z_]+)x{nonce}nlf")
    html_template = _select(env, [f"{kind}.{lang}.html", f"{kind}.html"])
    text_template = _select(env, [f"{kind}.{lang}.txt", f"{kind}.txt"])
    html = _inline_css(_render(env, html_template, {**context, **sentinels}), html_template)
    text = _render(env, text_template, {**context, **sentinels})
    return (
        _split(html, pattern, nonce, html_template),
        _split(text, pattern, nonce, text_template),
        (_where(html_template), _where(text_template)),
    )


def _select(env: jinja2.Environment, names: list[str]) -> jinja2.Template:
    try:
        return env.select_template(names)
    except jinja2.TemplatesNotFound:
        raise InputError(f"no template {' or '.join(names)} in {_search_paths(env)}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"{exc.filename or exc.name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        # Raised for a template that an {% extends %} or {% include %} names.
        raise InputError(f"no template {exc.name} in {_search_paths(env)}") from None


def _render(env: jinja2.Environment, template: jinja2.Template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        # An {% include %}d or {% extends %}ed template is compiled when first reached.
        raise InputError(f"{exc.filename or exc.name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise InputError(
            f"{_where(template)}: no template {exc.name} in {_search_paths(env)}"
        ) from None
    except Exception as exc:
        where = _template_frame(exc, env)
        if where is None:
            raise
        message = exc.message if isinstance(exc, jinja2.TemplateError) else repr(exc)
        raise InputError(f"{where[0]}, line {where[1]}: {message}") from None


def _template_frame(exc: BaseException, env: jinja2.Environment) -> tuple[str, int] | None:
    """The innermost template file and line in an error's traceback.

    Jinja rewrites tracebacks so that a frame of template code carries the
    template's file name and line number; any frame whose file lies in a
    template folder is one.
    """
    roots = tuple(str(Path(p)) for p in _search_paths(env))
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith(roots):
            found = (filename, lineno)
    return found


def _search_paths(env: jinja2.Environment) -> list[str]:
    paths: list[str] = []
    loader = env.loader
    loaders = loader.loaders if isinstance(loader, jinja2.ChoiceLoader) else [loader]
    for sub in loaders:
        if isinstance(sub, jinja2.FileSystemLoader):
            paths.extend(str(p) for p in sub.searchpath)
    return paths


def _where(template: jinja2.Template) -> str:
    return template.filename or template.name or "<template>"


def _inline_css(html: str, template: jinja2.Template) -> str:
    """premailer, once: no network, `!important` kept, the <style> kept whole in <head>.

    Keeping the style tag keeps the media queries and dark-mode rules as written;
    their `!important` is what lets them beat the inlined styles on a phone.
    Width and height stay the attributes the template wrote (premailer would copy
    `width:100%` over the 600 that Outlook needs). cssutils logs a complaint for every
    property it does not know, and email CSS is full of them (mso-hide, -ms-*), so its
    logging is quieted to critical errors.
    """
    try:
        return premailer.Premailer(
            html,
            allow_network=False,
            keep_style_tags=True,
            strip_important=False,
            disable_basic_attributes=["width", "height"],
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    except Exception as exc:
        raise InputError(f"{_where(template)}: the CSS could not be inlined: {exc}") from None


def _split(
    output: str, pattern: re.Pattern[str], nonce: str, template: jinja2.Template
) -> PersonalTemplate:
    """Cut rendered output at the sentinels into literal chunks and field names."""
    pieces = pattern.split(output.replace("\r\n", "\n"))
    literals = tuple(pieces[0::2])
    fields = tuple(pieces[1::2])
    if any(nonce in literal.lower() for literal in literals):
        raise InputError(
            f"{_where(template)}: a personal field went through a filter; personal fields "
            "(name, greeting, email and the links) can only be printed as they are"
        )
    return PersonalTemplate(literals=literals, fields=fields)
