"""Popularity maintained incrementally.

- recdb.refresh_popularity() counts the events committed since its last run (their
  transactions, events.txid, against the snapshot it stored; a BRIN index on txid finds
  them) and subtracts the counted events deleted or updated since (queued by the events
  trigger); recdb.rebuild_popularity() is the full rebuild (`recdb refresh --full`, the
  first run, changed half-life or weights, a TRUNCATE of the events).
- Per item a decayed mass against a fixed anchor (recdb.popularity); the normaliser is
  one row (recdb.popularity_state), so a step rewrites only the items that changed.
  recdb.item_popularity becomes a view serving the same columns.
- Co-visitation lists keep a reserve (recdb.covisit_reserve): a step proves most lists
  from what it knows instead of re-ranking each item's whole pair range.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0010/incremental_popularity.sql"))
    op.execute(load("v0010/covisit_reserve.sql"))
    apply_functions("0010")
    op.execute(load("v0010/drop_replaced.sql"))


def downgrade() -> None:
    op.execute(load("v0010/down.sql"))
    apply_functions("0009")
    op.execute(load("v0010/down_drop.sql"))
