"""rerank() reads a user's history from the events key alone.

- events_pkey carries item_id, kind and value (INCLUDE): the seen-list, the votes' recent
  items and the explanation's are index-only reads, whose cost does not depend on how
  the user's events are spread over the table (sql/v0014/events_key.sql).
- events is autovacuumed at 1% new rows instead of 20%, so the visibility map covers
  all but the newest events.

Upgrading rebuilds the key: writes to recdb.events wait while it builds (about a second
per 10^6 events on 2 cores).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import load

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0014/events_key.sql"))


def downgrade() -> None:
    op.execute(load("v0014/down.sql"))
