"""Segment rules: a small filter language over subscribers, checked, then compiled to SQL.

Staff write a segment in JSON or TOML; the program, never a person, writes the
SQL. A rule is one of:

    {"field": F, "op": "eq", "value": "ru"}          equal
    {"field": F, "op": "in", "value": ["ru", "uk"]}  equal to one of
    {"field": F, "op": "contains", "value": "HIV"}   a list attribute holds it
    {"field": F, "op": "exists"}                     set and not empty
    {"all": [rule, …]}   {"any": [rule, …]}   {"not": rule}

Fields: `language`, `status` (the subscriber's), `name` (`contains` is a
substring there, in any case; SQLite folds only ASCII letters), `domain` (of the address), `list` (a
confirmed member of the named list; `exists`: of any list), and any attribute
(`region`, `country`, `topics`, … or `attributes.KEY` for one named like a
field). `eq`, `in` and `contains` on text compare without regard to case
("eurasia" matches "Eurasia"; on SQLite only ASCII letters are folded, on
PostgreSQL every letter the database's locale knows). A `topics` value may be a
topic's slug or any of its labels: it is compared as the topic's slug
(newsletter.audience.topics), which is how topics are stored.

The same rules compile for SQLite (json_extract, json_each) and PostgreSQL
(->>, @> on JSONB) in `compile_rules`, the one place that knows both.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql

from newsletter.audience.columns import ATTRIBUTE_KEY_RE, normalise_language
from newsletter.audience.topics import Topics
from newsletter.errors import InputError
from newsletter.models import SUBSCRIBER_STATUSES, MailingList, Subscriber, Subscription

OPS = ("eq", "in", "contains", "exists")
COLUMN_FIELDS: dict[str, tuple[str, ...]] = {
    "language": ("eq", "in", "exists"),
    "status": ("eq", "in"),
    "name": ("eq", "in", "contains", "exists"),
    "domain": ("eq", "in"),
    "list": ("eq", "in", "exists"),
}
ATTRIBUTE_OPS = OPS
ATTRIBUTE_PREFIX = "attributes."


def parse_rules(text: str, *, where: str, fmt: str | None = None) -> tuple[dict[str, Any], str]:
    """Read a definition written in JSON or TOML; returns (rules, description).

    `fmt` is "json" or "toml"; without it, text that starts with '{' is JSON.
    A top-level `description` is taken out of the rules.
    """
    fmt = fmt or ("json" if text.lstrip().startswith(("{", "[")) else "toml")
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{where}: not valid TOML (nor JSON): {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f'{where}: a segment is an object such as {{"all": [...]}}')
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise InputError(f"{where}: description must be a string")
    return data, description


def _field(rule: dict[str, Any], where: str) -> tuple[str, str]:
    """('column', name) or ('attribute', key) for a rule's field."""
    name = rule.get("field")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: 'field' must name a field (language, list, region, …)")
    name = name.strip()
    if name.startswith(ATTRIBUTE_PREFIX):
        key = name[len(ATTRIBUTE_PREFIX) :]
    elif name in COLUMN_FIELDS:
        return "column", name
    else:
        key = name
    if not ATTRIBUTE_KEY_RE.match(key):
        raise InputError(
            f"{where}: field {name!r} is not a field nor an attribute name "
            "(letters, digits, '_' and '-')"
        )
    return "attribute", key


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: 'value' must be a non-empty string, not {value!r}")
    return value.strip()


# A mapping: segment rules are user data, stored as a JSON document.
def validate_rules(
    rules: Any,
    *,
    list_names: Collection[str] | None = None,
    where: str = "segment",
    topics: Topics | None = None,
) -> dict[str, Any]:
    """Check a definition and return it in normal form; an InputError names the bad part.

    `list_names`, when given, are the lists a `list` rule may name; `topics`, the
    configured topics whose labels a `topics` rule may use.
    """
    if not isinstance(rules, dict):
        raise InputError(f"{where}: expected an object (a rule, or all/any/not), not {rules!r}")
    combinators = [key for key in ("all", "any", "not") if key in rules]
    if combinators:
        if len(rules) != 1:
            extra = ", ".join(sorted(set(rules) - {combinators[0]}))
            raise InputError(
                f"{where}: {combinators[0]!r} stands alone; put {extra} in a rule of its own"
            )
        (key,) = combinators
        if key == "not":
            return {
                "not": validate_rules(
                    rules["not"], list_names=list_names, where=f"{where}.not", topics=topics
                )
            }
        children = rules[key]
        if not isinstance(children, list) or not children:
            raise InputError(f"{where}.{key}: expected a non-empty list of rules")
        return {
            key: [
                validate_rules(
                    child, list_names=list_names, where=f"{where}.{key}[{i}]", topics=topics
                )
                for i, child in enumerate(children)
            ]
        }

    unknown = set(rules) - {"field", "op", "value"}
    if unknown or "field" not in rules:
        raise InputError(
            f"{where}: a rule has field, op and value (or is all/any/not); "
            f"got {', '.join(sorted(rules)) or 'nothing'}"
        )
    kind, name = _field(rules, where)
    op = rules.get("op")
    allowed = COLUMN_FIELDS[name] if kind == "column" else ATTRIBUTE_OPS
    if op not in allowed:
        raise InputError(
            f"{where}: op {op!r} does not apply to {name!r} (use {', '.join(allowed)})"
        )
    field_name = name if kind == "column" else rules["field"].strip()
    if op == "exists":
        if "value" in rules:
            raise InputError(f"{where}: op 'exists' takes no value")
        return {"field": field_name, "op": op}
    if "value" not in rules:
        raise InputError(f"{where}: op {op!r} needs a value")
    if op == "in":
        values = rules["value"]
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: op 'in' needs a non-empty list of values")
        cleaned = [_string(v, f"{where}.value[{i}]") for i, v in enumerate(values)]
    else:
        cleaned = [_string(rules["value"], f"{where}.value")]

    if kind == "column":
        cleaned = [_check_column_value(name, v, where, list_names) for v in cleaned]
    elif name == "topics":
        named = topics or Topics({}, {})
        cleaned = [named.to_slug(v) or v for v in cleaned]
    value: Any = cleaned if op == "in" else cleaned[0]
    return {"field": field_name, "op": op, "value": value}


def _check_column_value(
    name: str, value: str, where: str, list_names: Collection[str] | None
) -> str:
    if name == "language":
        try:
            return normalise_language(value)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    if name == "status" and value not in SUBSCRIBER_STATUSES:
        raise InputError(
            f"{where}: status {value!r} is not one of: {', '.join(SUBSCRIBER_STATUSES)}"
        )
    if name == "list" and list_names is not None and value not in list_names:
        known = ", ".join(sorted(list_names)) or "none yet"
        raise InputError(f"{where}: no list named {value!r} (known: {known})")
    if name == "domain":
        return value.lstrip("@").casefold()
    return value


def referenced_attributes(rules: dict[str, Any]) -> list[str]:
    """The attribute keys a definition uses, in order of appearance."""
    found: list[str] = []
    for key in ("all", "any"):
        for child in rules.get(key, []):
            found += [k for k in referenced_attributes(child) if k not in found]
    if "not" in rules:
        found += [k for k in referenced_attributes(rules["not"]) if k not in found]
    if "field" in rules:
        kind, name = _field(rules, "segment")
        if kind == "attribute" and name not in found:
            found.append(name)
    return found


def compile_rules(rules: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    """A validated definition as a WHERE condition on `subscribers`, for this dialect."""
    if "all" in rules:
        return and_(*(compile_rules(child, dialect) for child in rules["all"]))
    if "any" in rules:
        return or_(*(compile_rules(child, dialect) for child in rules["any"]))
    if "not" in rules:
        # NOT over a NULL (a missing attribute) would be NULL, so missing counts as false
        # inside and true outside: "not region = Asia" includes people with no region.
        inner = compile_rules(rules["not"], dialect)
        return not_(func.coalesce(inner, false(), type_=Boolean))
    kind, name = _field(rules, "segment")
    op, value = rules["op"], rules.get("value")
    if kind == "column":
        return _compile_column(name, op, value)
    return _compile_attribute(name, op, value, dialect)


def _compile_column(name: str, op: str, value: Any) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    if name == "list":
        membership = (
            select(Subscription.id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id == Subscriber.id)
            .where(Subscription.status == "confirmed")
        )
        if op != "exists":
            membership = membership.where(MailingList.name.in_(values))
        return exists(membership)
    if name == "domain":
        return or_(*(Subscriber.email_key.endswith("@" + v, autoescape=True) for v in values))
    column = {"language": Subscriber.language, "status": Subscriber.status}.get(
        name, Subscriber.name
    )
    if op == "exists":
        return column != ""
    if op == "contains":  # only `name`: a case-insensitive substring
        return func.lower(column).contains(value.lower(), autoescape=True)
    if op == "in":
        return column.in_(values)
    return column == value


def _compile_attribute(key: str, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    text = Subscriber.attributes[key].as_string()
    if op == "eq":
        return func.lower(text) == value.lower()
    if op == "in":
        return func.lower(text).in_([v.lower() for v in value])
    if op == "exists":
        # Present, and neither an empty string nor an empty list.
        return func.coalesce(text, "").not_in(["", "[]"])
    # contains: a list attribute holds the value (or a plain one equals it), in any case.
    wanted = value.lower()
    if dialect == "postgresql":
        # Elements of the list as text; a plain value is compared as itself. The CASE
        # keeps jsonb_array_elements_text from seeing a scalar, which it refuses.
        attribute = Subscriber.attributes[key]
        as_list = case(
            (func.jsonb_typeof(attribute) == "array", attribute),
            else_=cast(literal("[]"), postgresql.JSONB),
        )
        elements = func.jsonb_array_elements_text(as_list).table_valued("value")
        held = exists(
            select(literal(1)).select_from(elements).where(func.lower(elements.c.value) == wanted)
        )
        return or_(held, func.lower(text) == wanted)
    elements = func.json_each(Subscriber.attributes, f'$."{key}"').table_valued("value")
    return exists(
        select(literal(1)).select_from(elements).where(func.lower(elements.c.value) == wanted)
    )


def describe_rules(rules: dict[str, Any]) -> str:
    """A definition in one line for people: language = ru AND region = Eurasia."""
    if "all" in rules or "any" in rules:
        key = "all" if "all" in rules else "any"
        joiner = " AND " if key == "all" else " OR "
        parts = [describe_rules(child) for child in rules[key]]
        text = joiner.join(f"({p})" if (" AND " in p or " OR " in p) else p for p in parts)
        return text
    if "not" in rules:
        return f"NOT ({describe_rules(rules['not'])})"
    name, op, value = rules["field"], rules["op"], rules.get("value")
    if op == "exists":
        return f"{name} is set"
    if op == "in":
        return f"{name} in ({', '.join(value or ())})"
    if op == "contains":
        return f"{name} contains {value!r}"
    return f"{name} = {value}"
