"""Console counts: list members kept by the database, stored audience counts, session ends.

Revision ID: 0009_console_counts
Revises: 0004_integrity

- list_member_counts: one row per list and subscription status with how many
  subscriptions of that list have that status. The lists page reads it instead
  of counting a million subscriptions on every request.

  It is kept up to date by triggers on `subscriptions`, not by the service
  functions, because memberships change by many paths (sign-up, confirmation,
  unsubscription, imports, console and CLI, erasure, bounce and complaint
  suppression, cascades from deleting a subscriber or a list) and by raw
  bulk statements (executemany, COPY): a trigger sees every one of them,
  including paths written later, while same-transaction updates in service
  code would be correct only as long as nobody forgets one. The triggers run
  inside the changing statement's transaction, so a count is never ahead of
  or behind what committed.

  On PostgreSQL they are statement-level triggers over transition tables: a
  statement that adds a million subscriptions writes one row per (list_id,
  status) it touched, not a million. They append those rows to
  list_member_changes rather than update the counter rows: updating one row
  many times in one transaction (an import's executemany of 100,000 UPDATEs is
  100,000 statements) leaves a chain of versions PostgreSQL must walk on every
  update, 1.3 ms a statement at 100,000 (bench/bench_counts.py), and two
  transactions updating the same counter would wait for each other. Appending
  costs the same at any size and locks nothing; readers add the changes to the
  counts, and newsletter/counts.py folds them in from time to time. SQLite has
  only row-level triggers, which upsert the counter row directly: it has one
  writer at a time and updates rows in place.

  The counts of existing subscriptions are filled in here; on PostgreSQL the
  subscriptions table is locked against writes (SHARE) while this migration
  commits, so that no change slips between the fill and the triggers.
- audience_counts: counts too costly to make per request (a campaign's
  recipients, what a segment builder's rules select), stored with the time
  they were made, so pages can show them as "counted at …"
  (newsletter/audience/counting.py).
- feedback_weeks: bounces, complaints and unsubscriptions per week (its Monday)
  and type, kept by triggers on `events` exactly as list_member_counts is kept
  (and for the same reasons: events come from webhooks, the bounce mailbox, the
  unsubscribe pages, and leave by cascade when a person is erased). Feedback
  over time reads 53 weeks of it. A GROUP BY over an index on events' time was
  tried first: at a million events it read the year's half-million index
  entries, 1 s on SQLite and 2.5 s on a busy PostgreSQL whose visibility map
  lagged (every index entry then also fetches its row).
- staff_users.session_generation: bumped by a password reset, a disable or a
  role change; a console session made under an older generation is refused.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0009_console_counts"
down_revision: str | None = "0004_integrity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER subscriptions_count_insert AFTER INSERT ON subscriptions
    BEGIN
        INSERT INTO list_member_counts (list_id, status, members)
        VALUES (NEW.list_id, NEW.status, 1)
        ON CONFLICT (list_id, status) DO UPDATE SET members = members + 1;
    END
    """,
    """
    CREATE TRIGGER subscriptions_count_delete AFTER DELETE ON subscriptions
    BEGIN
        UPDATE list_member_counts SET members = members - 1
        WHERE list_id = OLD.list_id AND status = OLD.status;
    END
    """,
    """
    CREATE TRIGGER subscriptions_count_update AFTER UPDATE OF list_id, status ON subscriptions
    WHEN OLD.list_id IS NOT NEW.list_id OR OLD.status IS NOT NEW.status
    BEGIN
        UPDATE list_member_counts SET members = members - 1
        WHERE list_id = OLD.list_id AND status = OLD.status;
        INSERT INTO list_member_counts (list_id, status, members)
        VALUES (NEW.list_id, NEW.status, 1)
        ON CONFLICT (list_id, status) DO UPDATE SET members = members + 1;
    END
    """,
)

# One function for the three statements: the transition tables each trigger declares
# (new_rows, old_rows or both) are the only difference, and PL/pgSQL plans each branch
# only when it runs, so a branch never sees a table its trigger lacks.
# One function for the three statements: the transition tables each trigger declares
# (new_rows, old_rows or both) are the only difference, and PL/pgSQL plans each branch
# only when it runs, so a branch never sees a table its trigger lacks.
_POSTGRESQL_FUNCTION = """
CREATE FUNCTION list_member_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO list_member_changes (list_id, status, members)
        SELECT list_id, status, count(*) FROM new_rows GROUP BY list_id, status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO list_member_changes (list_id, status, members)
        SELECT list_id, status, -count(*) FROM old_rows GROUP BY list_id, status;
    ELSE
        -- Most updates of subscriptions change neither key (consent, dates): the
        -- changes cancel out and nothing is written.
        INSERT INTO list_member_changes (list_id, status, members)
        SELECT list_id, status, sum(delta) FROM (
            SELECT list_id, status, 1 AS delta FROM new_rows
            UNION ALL
            SELECT list_id, status, -1 AS delta FROM old_rows
        ) AS changes
        GROUP BY list_id, status HAVING sum(delta) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
_POSTGRESQL_TRIGGERS = (
    """
    CREATE TRIGGER subscriptions_count_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION list_member_counts_apply()
    """,
    """
    CREATE TRIGGER subscriptions_count_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION list_member_counts_apply()
    """,
    """
    CREATE TRIGGER subscriptions_count_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION list_member_counts_apply()
    """,
)
_TRIGGER_NAMES = (
    "subscriptions_count_insert",
    "subscriptions_count_delete",
    "subscriptions_count_update",
    "events_week_insert",
    "events_week_delete",
    "events_week_update",
)

# The Monday of an event's week, computed by the database ('weekday 0' moves to the
# Sunday of the week, or stays on one; six days back is its Monday).
_SQLITE_WEEK = "date({row}.created_at, 'weekday 0', '-6 days')"
_SQLITE_WEEK_TRIGGERS = (
    f"""
    CREATE TRIGGER events_week_insert AFTER INSERT ON events
    BEGIN
        INSERT INTO feedback_weeks (week, type, events)
        VALUES ({_SQLITE_WEEK.format(row="NEW")}, NEW.type, 1)
        ON CONFLICT (week, type) DO UPDATE SET events = events + 1;
    END
    """,
    f"""
    CREATE TRIGGER events_week_delete AFTER DELETE ON events
    BEGIN
        UPDATE feedback_weeks SET events = events - 1
        WHERE week = {_SQLITE_WEEK.format(row="OLD")} AND type = OLD.type;
    END
    """,
    f"""
    CREATE TRIGGER events_week_update AFTER UPDATE OF created_at, type ON events
    WHEN OLD.created_at IS NOT NEW.created_at OR OLD.type IS NOT NEW.type
    BEGIN
        UPDATE feedback_weeks SET events = events - 1
        WHERE week = {_SQLITE_WEEK.format(row="OLD")} AND type = OLD.type;
        INSERT INTO feedback_weeks (week, type, events)
        VALUES ({_SQLITE_WEEK.format(row="NEW")}, NEW.type, 1)
        ON CONFLICT (week, type) DO UPDATE SET events = events + 1;
    END
    """,
)
_POSTGRESQL_WEEK_FUNCTION = """
CREATE FUNCTION feedback_weeks_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO feedback_week_changes (week, type, events)
        SELECT date_trunc('week', created_at)::date, type, count(*) FROM new_rows
        GROUP BY 1, 2;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO feedback_week_changes (week, type, events)
        SELECT date_trunc('week', created_at)::date, type, -count(*) FROM old_rows
        GROUP BY 1, 2;
    ELSE
        INSERT INTO feedback_week_changes (week, type, events)
        SELECT week, type, sum(delta) FROM (
            SELECT date_trunc('week', created_at)::date AS week, type, 1 AS delta
            FROM new_rows
            UNION ALL
            SELECT date_trunc('week', created_at)::date, type, -1 FROM old_rows
        ) AS changes
        GROUP BY week, type HAVING sum(delta) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
_POSTGRESQL_WEEK_TRIGGERS = tuple(
    statement.replace("subscriptions_count_", "events_week_")
    .replace("ON subscriptions", "ON events")
    .replace("list_member_counts_apply", "feedback_weeks_apply")
    for statement in _POSTGRESQL_TRIGGERS
)


def upgrade() -> None:
    op.create_table(
        "list_member_counts",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_list_member_counts_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "status", name=op.f("pk_list_member_counts")),
    )
    op.create_table(
        "audience_counts",
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("matching", sa.BigInteger(), nullable=True),
        sa.Column("reachable", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_audience_counts")),
    )
    # PostgreSQL's triggers append here; newsletter/counts.py folds them into the counts.
    op.create_table(
        "list_member_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_member_changes")),
    )
    op.create_table(
        "feedback_week_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_week_changes")),
    )
    op.create_table(
        "feedback_weeks",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("week", "type", name=op.f("pk_feedback_weeks")),
    )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )

    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE subscriptions IN SHARE MODE")
    op.execute(
        "INSERT INTO list_member_counts (list_id, status, members) "
        "SELECT list_id, status, count(*) FROM subscriptions GROUP BY list_id, status"
    )
    if postgresql:
        op.execute("LOCK TABLE events IN SHARE MODE")
        week = "date_trunc('week', created_at)::date"
    else:
        week = _SQLITE_WEEK.format(row="events")
    op.execute(
        f"INSERT INTO feedback_weeks (week, type, events) "
        f"SELECT {week}, type, count(*) FROM events GROUP BY {week}, type"
    )
    if postgresql:
        op.execute(_POSTGRESQL_FUNCTION)
        op.execute(_POSTGRESQL_WEEK_FUNCTION)
        for statement in _POSTGRESQL_TRIGGERS + _POSTGRESQL_WEEK_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS + _SQLITE_WEEK_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGER_NAMES:
        table = "subscriptions" if name.startswith("subscriptions") else "events"
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION list_member_counts_apply()")
        op.execute("DROP FUNCTION feedback_weeks_apply()")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
    op.drop_table("feedback_weeks")
    op.drop_table("feedback_week_changes")
    op.drop_table("list_member_changes")
    op.drop_table("audience_counts")
    op.drop_table("list_member_counts")
