"""What the columns of a subscriber file mean: header aliases, attributes, cleaned values.

People export lists from spreadsheets, CRMs and other mailing tools, each with
its own headers, in several languages. A header is recognised by its letters
and digits only, case-folded ("E-Mail-Adresse", "Email Address" and
"email_address" all count), and every column that is not the address, the
name or the language becomes an attribute (region, country, organisation,
role, topics, or anything else), keyed by its header in snake_case.

`topics` (and its aliases) is the one list-valued attribute: a cell such as
"drug policy; HIV" becomes ["drug policy", "HIV"], split on ';' or '|'
(commas stay, as topic names may hold them).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from newsletter.errors import InputError
from newsletter.locale import language_code


def header_token(header: str) -> str:
    """A header's letters and digits, case-folded: how aliases are matched."""
    return "".join(ch for ch in unicodedata.normalize("NFC", header).casefold() if ch.isalnum())


def _tokens(*headers: str) -> frozenset[str]:
    return frozenset(header_token(h) for h in headers)


EMAIL_HEADERS = _tokens(
    "email", "e-mail", "email address", "e-mail address", "mail", "mail address",
    "email_address", "primary email", "e-mail 1 - value", "E-Mail-Adresse",
    "courriel", "adresse e-mail", "adresse électronique", "correo", "correo electrónico",
    "электронная почта", "эл. почта", "почта", "адрес электронной почты", "e-mail адрес",
)  # fmt: skip
NAME_HEADERS = _tokens(
    "name", "full name", "display name", "contact name", "subscriber name",
    "nom complet", "nombre completo", "фио", "полное имя",
)  # fmt: skip
FIRST_NAME_HEADERS = _tokens(
    "first name", "first", "given name", "forename", "prénom", "prenom", "имя",
)  # fmt: skip
LAST_NAME_HEADERS = _tokens(
    "last name", "last", "surname", "family name", "nom de famille", "apellido",
    "apellidos", "фамилия",
)  # fmt: skip
# "nom" (French) and "nombre" (Spanish) are a whole name when alone, and the other half
# of the name when the file also has a first or last name column.
AMBIGUOUS_NAME_HEADERS = {header_token("nom"): "last", header_token("nombre"): "first"}
LANGUAGE_HEADERS = _tokens(
    "language", "lang", "locale", "preferred language", "language code", "langue", "idioma",
    "язык",
)  # fmt: skip

# Attribute aliases: several spellings, one key.
ATTRIBUTE_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        _tokens("organisation", "organization", "org", "company", "organización",
                "organizacion", "организация"),
        "organisation",
    ),
    **dict.fromkeys(_tokens("country", "pays", "país", "страна"), "country"),
    **dict.fromkeys(_tokens("region", "région", "región", "регион"), "region"),
    **dict.fromkeys(_tokens("role", "rôle", "rol", "роль", "position", "job title"), "role"),
    **dict.fromkeys(
        _tokens("topics", "topic", "interests", "themes", "thèmes", "temas", "темы"), "topics"
    ),
}  # fmt: skip
LIST_ATTRIBUTES = frozenset({"topics"})

# Columns our own reject and export files add, skipped when such a file is imported
# again, so that a fixed reject file or an export can be fed straight back in.
IGNORED_HEADERS = _tokens(
    "rejected_line", "rejected_reason", "list_status", "subscriber_status", "consent_at",
)  # fmt: skip

ATTRIBUTE_KEY_RE = re.compile(r"^\w[\w-]{0,63}$")


def attribute_key(header: str) -> str:
    """The attribute key for a header: an alias's key, else the header in snake_case."""
    token = header_token(header)
    if token in ATTRIBUTE_ALIASES:
        return ATTRIBUTE_ALIASES[token]
    text = unicodedata.normalize("NFC", header).strip().casefold()
    key = re.sub(r"[^\w-]+", "_", text).strip("_-")[:64]
    return key


@dataclass(frozen=True)
class ColumnMap:
    """Where each field is in a row (indexes into the row's fields)."""

    email: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    language: int | None = None
    attributes: tuple[tuple[int, str], ...] = ()
    ignored: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)


def map_header(header: list[str], *, where: str) -> ColumnMap:
    """Read a header row; an InputError names the problem and what was looked for."""
    roles: dict[str, int] = {}
    attributes: list[tuple[int, str]] = []
    ignored: list[int] = []
    ambiguous: list[tuple[int, str]] = []
    notes: list[str] = []
    seen_attributes: dict[str, int] = {}

    def claim(role: str, index: int) -> None:
        if role in roles:
            raise InputError(
                f"{where}: columns {roles[role] + 1} ({header[roles[role]]!r}) and {index + 1} "
                f"({header[index]!r}) both give the {role.replace('_', ' ')}; keep one"
            )
        roles[role] = index

    for index, raw in enumerate(header):
        token = header_token(raw)
        if not token:
            if raw.strip():
                notes.append(f"column {index + 1} ({raw!r}) has no letters or digits; ignored")
            ignored.append(index)
        elif token in IGNORED_HEADERS:
            ignored.append(index)
        elif token in EMAIL_HEADERS:
            claim("email", index)
        elif token in NAME_HEADERS:
            claim("name", index)
        elif token in FIRST_NAME_HEADERS:
            claim("first_name", index)
        elif token in LAST_NAME_HEADERS:
            claim("last_name", index)
        elif token in AMBIGUOUS_NAME_HEADERS:
            ambiguous.append((index, AMBIGUOUS_NAME_HEADERS[token]))
        elif token in LANGUAGE_HEADERS:
            claim("language", index)
        else:
            key = attribute_key(raw)
            if key in seen_attributes:
                first = seen_attributes[key]
                raise InputError(
                    f"{where}: columns {first + 1} ({header[first]!r}) and {index + 1} "
                    f"({raw!r}) are both the attribute {key!r}; keep one"
                )
            seen_attributes[key] = index
            attributes.append((index, key))

    for index, half in ambiguous:
        has_other_half = "first_name" in roles or "last_name" in roles
        claim(f"{half}_name" if has_other_half else "name", index)

    if "email" not in roles:
        found = ", ".join(repr(h) for h in header) or "nothing"
        raise InputError(
            f"{where}: no email column (looked for a header such as email, e-mail, "
            f"Email Address or mail); the header has {found}"
        )
    return ColumnMap(
        email=roles["email"],
        name=roles.get("name"),
        first_name=roles.get("first_name"),
        last_name=roles.get("last_name"),
        language=roles.get("language"),
        attributes=tuple(attributes),
        ignored=tuple(ignored),
        notes=notes,
    )


def split_topics(value: str) -> list[str]:
    """'drug policy; HIV | harm reduction' → ['drug policy', 'HIV', 'harm reduction']."""
    topics: list[str] = []
    for part in re.split(r"[;|]", value):
        topic = " ".join(part.split())
        if topic and topic not in topics:
            topics.append(topic)
    return topics


def attribute_value(key: str, value: str) -> str | list[str]:
    text = value.strip()
    return split_topics(text) if key in LIST_ATTRIBUTES else text


def clean_name(value: str) -> str:
    """A name on one line: line breaks and control characters become single spaces.

    A name goes into a To: header; a line break there must never survive.
    """
    if value.isprintable():
        # No character of category C (nor a separator but the space): nothing to replace,
        # and the per-character look-up below is the dearest step of reading a row.
        return " ".join(value.split())
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    return " ".join(text.split())


LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


def normalise_language(value: str) -> str:
    """'EN', 'en_GB', 'Russian', 'русский' → 'en', 'en-gb', 'ru', 'ru'; ValueError otherwise."""
    text = value.strip().casefold().replace("_", "-")
    # Language names people type instead of codes ("Russian", "русский", "ruso").
    text = language_code(text) or text
    if not LANGUAGE_RE.match(text) or len(text) > 10:
        raise ValueError(f"language {value.strip()!r} is not a language code (e.g. en, ru, fr, es)")
    return text


def parse_attribute_option(option: str) -> tuple[str, str | list[str]]:
    """`--attr region=Eurasia` → ('region', 'Eurasia'); topics become a list."""
    if "=" not in option:
        raise InputError(f"--attr {option!r}: write it as key=value, e.g. region=Eurasia")
    raw_key, value = option.split("=", 1)
    key = attribute_key(raw_key)
    if not key or not ATTRIBUTE_KEY_RE.match(key):
        raise InputError(f"--attr {option!r}: {raw_key!r} is not usable as an attribute name")
    return key, attribute_value(key, value)
