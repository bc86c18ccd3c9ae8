"""Indexes for reading a campaign's feedback: events by campaign and type, and by delivery.

Revision ID: 0011_event_indexes
Revises: 0010_send_counters

A campaign's bounce and complaint counts (`newsletter status`, the dashboard, the
feedback page) and the reasons beside its failed deliveries (the console, the
`deliveries` command) read the events of one campaign. Without an index on
`events.campaign_id` each of those reads scanned every event ever recorded, which
with a year of bounces took seconds. `delivery_id` is indexed too: erasing a
person or deleting a campaign cascades from deliveries to their events.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_event_indexes"
down_revision: str | None = "0010_send_counters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_campaign_type", "events", ["campaign_id", "type"])
    op.create_index("ix_events_delivery", "events", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_events_delivery", table_name="events")
    op.drop_index("ix_events_campaign_type", table_name="events")
