"""Segments: the rules checked when saved, and compiled filters against hand-computed sets."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from newsletter import audience
from newsletter.app import bundled_path
from newsletter.audience.segment_rules import describe_rules, parse_rules, validate_rules
from newsletter.audience.segments import SegmentMember, matching_query
from newsletter.errors import InputError, InvalidState
from newsletter.models import Subscriber

# Who is who: the expected sets below are worked out by hand from this table.
POPULATION = [
    # email, name, language, attributes, lists (confirmed unless noted)
    ("a@example.org", "Anna Ivanova", "ru",
     {"region": "Eurasia", "topics": ["drug policy", "HIV"]}, ["members"]),
    ("b@example.org", "Boris", "ru", {"region": "Europe", "topics": ["harm reduction"]},
     ["members", "partners"]),
    ("c@example.net", "Chen", "en", {"region": "Eurasia", "topics": ["drug policy"]},
     ["partners"]),
    ("d@example.net", "Dara", "fr", {"region": "Africa"}, ["members"]),
    # A topic stored as plain text (not a list) still "contains" itself.
    ("e@sub.example.org", "Eva", "es", {"topics": "drug policy"}, ["members"]),
    ("f@example.org", "Femi", "en", {"region": "Asia", "topics": ["HIV"]}, ["members"]),
    ("g@example.org", "Gus", "en", {"region": ""}, ["partners:unconfirmed"]),
]  # fmt: skip


@pytest.fixture
def population(app) -> None:
    audience.create_list(app, "members", actor="tester")
    audience.create_list(app, "partners", actor="tester")
    for email, name, language, attributes, lists in POPULATION:
        for entry in lists:
            list_name, _, state = entry.partition(":")
            audience.add_subscriber(
                app,
                email,
                list_name,
                name=name,
                language=language,
                attributes=attributes,
                confirmed=state != "unconfirmed",
                actor="tester",
            )
    # f's address bounced: still matched by rules, never reachable.
    audience.suppression.suppress_address(app, "f@example.org", "hard_bounce", actor="tester")


def matching(app, rules: dict) -> set[str]:
    checked = validate_rules(rules, list_names={"members", "partners"})
    with app.session() as session:
        ids = matching_query(session, checked).subquery()
        return set(
            session.scalars(
                select(Subscriber.email).join(ids, ids.c.subscriber_id == Subscriber.id)
            )
        )


def rule(field: str, op: str, value: object = None) -> dict:
    return {"field": field, "op": op} | ({} if value is None else {"value": value})


CASES = [
    ("language ru", rule("language", "eq", "ru"), {"a@example.org", "b@example.org"}),
    ("language by name", rule("language", "eq", "Russian"), {"a@example.org", "b@example.org"}),
    ("language in", rule("language", "in", ["fr", "es"]), {"d@example.net", "e@sub.example.org"}),
    ("russian speakers in eurasia",
     {"all": [rule("language", "eq", "ru"), rule("region", "eq", "Eurasia")]},
     {"a@example.org"}),
    ("eurasia or asia", {"any": [rule("region", "eq", "Eurasia"), rule("region", "eq", "Asia")]},
     {"a@example.org", "c@example.net", "f@example.org"}),
    ("region in", rule("region", "in", ["Eurasia", "Asia"]),
     {"a@example.org", "c@example.net", "f@example.org"}),
    ("explicit attribute prefix", rule("attributes.region", "eq", "Eurasia"),
     {"a@example.org", "c@example.net"}),
    ("drug policy", rule("topics", "contains", "drug policy"),
     {"a@example.org", "c@example.net", "e@sub.example.org"}),
    ("hiv", rule("topics", "contains", "HIV"), {"a@example.org", "f@example.org"}),
    # Topics are one identity (a slug); a segment may name one by its slug or label,
    # and text compares without regard to case.
    ("any case", rule("topics", "contains", "hiv"), {"a@example.org", "f@example.org"}),
    ("topic by label", rule("topics", "contains", "Harm Reduction"), {"b@example.org"}),
    ("topic by slug", rule("topics", "eq", "harm-reduction"), set()),
    ("topic in", rule("topics", "in", ["HIV"]), set()),
    ("region in any case", rule("region", "eq", "EURASIA"), {"a@example.org", "c@example.net"}),
    ("region in, any case", rule("region", "in", ["eurasia"]), {"a@example.org", "c@example.net"}),
    # A missing attribute is "not Eurasia" too.
    ("not eurasia", {"not": rule("region", "eq", "Eurasia")},
     {"b@example.org", "d@example.net", "e@sub.example.org", "f@example.org", "g@example.org"}),
    ("has topics", rule("topics", "exists"),
     {"a@example.org", "b@example.org", "c@example.net", "e@sub.example.org", "f@example.org"}),
    # An empty value is not a value.
    ("has region", rule("region", "exists"),
     {"a@example.org", "b@example.org", "c@example.net", "d@example.net", "f@example.org"}),
    ("confirmed on partners", rule("list", "eq", "partners"), {"b@example.org", "c@example.net"}),
    ("on any list", rule("list", "exists"),
     {"a@example.org", "b@example.org", "c@example.net", "d@example.net", "e@sub.example.org",
      "f@example.org"}),
    ("domain", rule("domain", "eq", "example.net"), {"c@example.net", "d@example.net"}),
    ("domain is not a suffix match", rule("domain", "in", ["@Example.org"]),
     {"a@example.org", "b@example.org", "f@example.org", "g@example.org"}),
    ("status", rule("status", "eq", "bounced"), {"f@example.org"}),
    ("name contains, any case", rule("name", "contains", "ANN"), {"a@example.org"}),
    ("nested",
     {"all": [{"any": [rule("language", "eq", "ru"), rule("language", "eq", "en")]},
              {"not": rule("topics", "contains", "HIV")}]},
     {"b@example.org", "c@example.net", "g@example.org"}),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules_select_the_hand_computed_set(app, population, rules, expected) -> None:
    assert matching(app, rules) == expected


def test_reachable_leaves_out_the_bounced_and_the_unconfirmed(app, population) -> None:
    saved = audience.save_segment(
        app,
        "english",
        text=json.dumps(rule("language", "eq", "en")),
        description="English speakers",
        actor="cli:test",
    )
    # c, f and g speak English: f bounced, g has not confirmed.
    assert (saved.matching, saved.reachable) == (3, 1)
    shown = audience.show_segment(app, "english")
    assert shown.sample == [SegmentMember(email="c@example.net", name="Chen", language="en")]
    assert shown.description == "English speakers"


INVALID = [
    ("not an object", ["language"], "expected an object"),
    ("unknown op", rule("language", "equals", "ru"), "op 'equals' does not apply to 'language'"),
    ("contains on a column", rule("language", "contains", "r"), "use eq, in, exists"),
    ("missing value", {"field": "region", "op": "eq"}, "op 'eq' needs a value"),
    ("exists with value", rule("region", "exists") | {"value": "x"}, "'exists' takes no value"),
    ("in without a list", rule("region", "in", "Asia"), "non-empty list"),
    ("empty string", rule("region", "eq", " "), "non-empty string"),
    ("number", rule("region", "eq", 5), "non-empty string, not 5"),
    ("unknown list", rule("list", "eq", "friends"), "no list named 'friends'"),
    ("unknown status", rule("status", "eq", "gone"), "status 'gone' is not one of"),
    ("bad language", rule("language", "eq", "klingon tongue"), "not a language code"),
    ("bad attribute name", rule("region'); DROP TABLE x; --", "eq", "x"), "is not a field"),
    ("extra keys", rule("region", "eq", "x") | {"opp": "eq"}, "got field, op, opp, value"),
    ("combinator with company", {"all": [rule("region", "exists")], "field": "x"},
     "'all' stands alone"),
    ("empty all", {"all": []}, "all: expected a non-empty list"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_rules_are_refused_naming_the_bad_part(rules, message) -> None:
    with pytest.raises(InputError) as caught:
        validate_rules(rules, list_names={"members"})
    assert message in str(caught.value)


def test_the_error_says_where_in_a_nested_definition() -> None:
    rules = {"all": [rule("language", "eq", "ru"), {"any": [rule("region", "eq")]}]}
    with pytest.raises(InputError, match=r"segment\.all\[1\]\.any\[0\]: op 'eq' needs a value"):
        validate_rules(rules)


def test_toml_and_json_read_the_same() -> None:
    toml_text = (bundled_path("subscribers") / "segments/russian-speakers-eurasia.toml").read_text()
    from_toml, description = parse_rules(toml_text, where="f.toml")
    from_json, _ = parse_rules(
        json.dumps({"all": [rule("language", "eq", "ru"), rule("region", "eq", "Eurasia")]}),
        where="inline",
    )
    assert from_toml == from_json
    assert description == "Russian speakers in Eurasia"
    assert describe_rules(validate_rules(from_toml)) == "language = ru AND region = Eurasia"


def test_syntax_errors_name_the_place() -> None:
    with pytest.raises(InputError, match=r"inline: not valid JSON: .*line 1, column 15"):
        parse_rules('{"field": "x",}', where="inline")
    with pytest.raises(InputError, match=r"f\.toml: not valid TOML"):
        parse_rules("field = ", where="f.toml", fmt="toml")


def test_saving_twice_needs_replace(app, population) -> None:
    text = json.dumps(rule("language", "eq", "ru"))
    audience.save_segment(app, "ru", text=text, actor="cli:test")
    with pytest.raises(InvalidState, match="--replace"):
        audience.save_segment(app, "ru", text=text, actor="cli:test")
    replaced = audience.save_segment(
        app, "ru", text=json.dumps(rule("language", "eq", "fr")), replace=True, actor="cli:test"
    )
    assert replaced.matching == 1


def test_an_attribute_nobody_has_is_a_warning(app, population) -> None:
    saved = audience.save_segment(
        app, "typo", text=json.dumps(rule("regoin", "eq", "Asia")), actor="cli:test"
    )
    assert saved.warnings == ["no subscriber has an attribute 'regoin' (yet); check the spelling"]


def test_cli_segments_create_show_list(run_cli, tmp_path) -> None:
    assert run_cli("lists", "create", "members").returncode == 0
    samples = bundled_path("subscribers")
    imported = run_cli("subscribers", "import", str(samples / "members.csv"), "--list", "members")
    assert imported.returncode == 0, imported.stderr

    created = run_cli(
        "segments", "create", "ru-eurasia",
        "--file", str(samples / "segments/russian-speakers-eurasia.toml"),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "Saved segment ru-eurasia: language = ru AND region = Eurasia" in created.stdout
    assert "4 matching subscriber(s), 4 reachable" in created.stdout

    shown = run_cli("segments", "show", "ru-eurasia", "--json")
    data = json.loads(shown.stdout)
    assert data["matching"] == 4 and len(data["sample"]) == 4
    assert {s["language"] for s in data["sample"]} == {"ru"}
    assert data["languages"] == {"ru": 4}
    active = run_cli(
        "segments", "create", "everyone-active", "--definition",
        '{"all": [{"field": "status", "op": "eq", "value": "active"}]}',
    )  # fmt: skip
    assert active.returncode == 0, active.stderr
    everyone = run_cli("segments", "show", "everyone-active")
    assert "languages: en 14, ru 4, es 3, fr 3" in everyone.stdout

    drug_policy = run_cli(
        "segments", "create", "drug-policy", "--file", str(samples / "segments/drug-policy.json")
    )
    assert "reachable" in drug_policy.stdout
    listed = run_cli("segments", "list")
    # The topic is saved as its slug, however the rules named it.
    assert "drug-policy" in listed.stdout and "topics contains 'drug-policy'" in listed.stdout

    bad = run_cli(
        "segments", "create", "bad", "--definition",
        '{"all": [{"field": "language", "op": "eq", "value": "ru"}, {"field": "list", "op": "eq", '
        '"value": "nope"}]}',
    )  # fmt: skip
    assert bad.returncode == 2
    assert "segment definition.all[1]: no list named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = run_cli("segments", "show", "nope")
    assert missing.returncode == 2 and "no segment named 'nope'" in missing.stderr
