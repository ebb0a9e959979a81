"""The worker reads a user's history from the events key alone.

- events_pkey carries occurred_at too (INCLUDE item_id, kind, value, occurred_at): the
  worker's read of each claimed user's newest events, weighed by their age, is
  index-only, whose cost does not depend on how the user's events are spread over the
  table (sql/v0017/events_key.sql).

Upgrading rebuilds the key: writes to recdb.events wait while it builds (about a second
per 10^6 events on 2 cores).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import load

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0017/events_key.sql"))


def downgrade() -> None:
    op.execute(load("v0017/down.sql"))
