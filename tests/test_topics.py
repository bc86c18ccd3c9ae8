"""Topics: one identity (a slug with labels), whatever wrote it; segments accept
either spelling; an unchanged preferences form changes nothing.

Runs on SQLite, and on PostgreSQL too when NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from webkit import make_lists

from newsletter import audience, editing, editions
from newsletter.app import Newsletter
from newsletter.audience.joining import subscribe
from newsletter.audience.preferences import get_preferences, update_preferences
from newsletter.audience.segments import matching_query
from newsletter.audience.topics import Topics, slugify
from newsletter.errors import InvalidState
from newsletter.models import Item, Subscriber

LABELS = {"ru": "Снижение вреда", "fr": "Réduction des risques"}


def test_slugs_and_labels_name_one_topic() -> None:
    topics = Topics({"harm-reduction": "Harm reduction", "hiv": "HIV"}, {"harm-reduction": LABELS})
    assert slugify("  Harm   Réduction ") == "harm-reduction"
    assert [topics.to_slug(t) for t in ("harm reduction", "HARM-REDUCTION", "Снижение вреда",
                                         "réduction des risques", "hiv")] == (
        ["harm-reduction"] * 4 + ["hiv"]
    )  # fmt: skip
    # A topic the config does not know keeps one spelling too.
    assert topics.to_slugs(["Prison health", "prison-health", "", "HIV"]) == [
        "prison-health",
        "hiv",
    ]
    assert topics.label("harm-reduction", "ru") == "Снижение вреда"
    assert topics.label("hiv", "ru") == "HIV"


def test_csv_import_stores_topic_slugs(make_app, tmp_path: Path) -> None:
    app = make_app({"web": {"topic_labels": {"harm-reduction": LABELS}}})
    audience.create_list(app, "members", actor="cli:t")
    csv = tmp_path / "members.csv"
    csv.write_text(
        "email,name,topics\n"
        "ana@example.org,Ana,harm reduction; HIV | Prison health\n"
        "ivan@example.org,Иван,Снижение вреда\n",
        encoding="utf-8",
    )
    audience.import_subscribers(app, csv, list_name="members", actor="cli:t")
    with app.session() as session:
        stored = dict(session.execute(select(Subscriber.email, Subscriber.attributes)).all())
    assert stored["ana@example.org"]["topics"] == ["harm-reduction", "hiv", "prison-health"]
    assert stored["ivan@example.org"]["topics"] == ["harm-reduction"]


def test_a_web_signup_matches_a_segment_written_with_the_label(app: Newsletter) -> None:
    make_lists(app)
    outcome = subscribe(app, "kim@example.org", list_names=["news"], topics=["harm-reduction"])
    assert outcome.subscriber_id is not None
    saved = audience.save_segment(
        app,
        "harm",
        text='{"field": "topics", "op": "contains", "value": "Harm reduction"}',
        actor="cli:test",
    )
    assert saved.definition["value"] == "harm-reduction"
    with app.session() as session:
        ids = matching_query(session, saved.definition).subquery()
        members = set(session.scalars(select(ids.c.subscriber_id)))
    assert members == {outcome.subscriber_id}


_TOPIC = st.sampled_from(
    ["harm-reduction", "Harm reduction", "hiv", "HIV", "human-rights", "Drug policy",
     "prison health", "Prison-Health", "women", "Снижение вреда"]
)  # fmt: skip


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stored=st.lists(_TOPIC, max_size=6), as_list=st.booleans())
def test_saving_an_unchanged_preferences_form_changes_nothing(
    make_app, stored: list[str], as_list: bool
) -> None:
    """Property: whatever topics a person has (slugs, labels, topics the page does not
    offer), pressing Save on the form as it was shown leaves them as they were."""
    app = _app_with_person(make_app)
    attributes = {"topics": stored if as_list else ", ".join(stored), "region": "Asia"}
    with app.session() as session:
        session.execute(update(Subscriber).values(attributes=attributes))
        sid = session.scalars(select(Subscriber.id)).one()
    shown = get_preferences(app, sid)
    assert shown is not None
    offered = set(app.config.web.topics)
    ticked = [t for t in shown.topics if t in offered]
    update_preferences(
        app,
        sid,
        name=shown.name,
        language=shown.language,
        topics=ticked,
        list_names=[c.name for c in shown.lists if c.subscribed],
    )
    with app.session() as session:
        after = session.get_one(Subscriber, sid)
        assert after.attributes == attributes
        assert (after.name, after.language) == (shown.name, shown.language)
    assert get_preferences(app, sid) == shown


_APPS: dict[int, Newsletter] = {}


def _app_with_person(make_app) -> Newsletter:
    # One database for all the examples of one test run: building one per example would
    # take most of the time; each example overwrites the person's attributes.
    key = id(make_app)
    if key not in _APPS:
        app = make_app({"web": {"topic_labels": {"harm-reduction": LABELS}}})
        make_lists(app)
        outcome = subscribe(app, "pat@example.org", list_names=["news"], name="Pat")
        assert outcome.action != "refused"
        _APPS.clear()
        _APPS[key] = app
    return _APPS[key]


def test_unticking_a_topic_keeps_the_ones_the_page_does_not_offer(app: Newsletter) -> None:
    make_lists(app)
    outcome = subscribe(app, "lou@example.org", list_names=["news"])
    sid = outcome.subscriber_id
    with app.session() as session:
        session.execute(
            update(Subscriber).values(attributes={"topics": ["hiv", "women", "Harm reduction"]})
        )
    prefs = update_preferences(
        app, sid, name="", language="en", topics=["hiv"], list_names=["news"]
    )
    assert prefs is not None and prefs.topics == ("hiv", "women")


def test_segments_edit_and_delete(app: Newsletter, run_cli) -> None:
    audience.create_list(app, "members", actor="cli:t")
    audience.save_segment(
        app, "asia", text='{"field": "region", "op": "eq", "value": "Asia"}', actor="cli:test"
    )
    edited = audience.save_segment(
        app, "asia", description="People in Asia", replace=True, must_exist=True, actor="cli:test"
    )
    assert (edited.description, edited.definition["value"]) == ("People in Asia", "Asia")
    with app.session() as session:
        session.add(Item(source="t", source_id="x", kind="news", title="T", date=date(2019, 6, 1)))
    draft = editions.new_bulletin(app, "2019-06", segment="asia", actor="cli:t")
    with pytest.raises(InvalidState, match=rf"campaign {draft.id} \(draft\)"):
        audience.delete_segment(app, "asia", actor="cli:t")
    editing.edit_edition(app, draft.id, actor="cli:t", no_segment=True, lists=["members"])
    assert audience.delete_segment(app, "asia", actor="cli:t").name == "asia"
    missing = run_cli("segments", "edit", "asia", "--description", "x")
    assert missing.returncode == 2 and "no segment named 'asia'" in missing.stderr
