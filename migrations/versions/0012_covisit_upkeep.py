"""Co-visitation upkeep: rebuilt after a TRUNCATE, its working state unlogged, its served
lists vacuumed sooner.

- recdb.events_truncated() also clears recdb.covisit_state, so the next maintenance
  step rebuilds every list from the events. Before, the step applied only the users
  queued after the TRUNCATE against the sets of before it: every other truncated user's
  pairs stayed, and the first step after a reload applied thousands of users one by one
  (the bench's 100,000-item reload: 669 s instead of seconds).
- The working state (sets, pair counts, reserve, gates, queue, build marker) is
  UNLOGGED: a step's WAL falls from 150-330 MB to 8-11 MB at 10^6 events; a crash
  empties it and the next step rebuilds (sql/v0012/unlogged.sql).
- item_neighbors is autovacuumed at 1% of its rows changed instead of 20%, so the
  visibility map keeps rerank()'s votes an index-only read (sql/v0012/autovacuum.sql).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0012/unlogged.sql"))
    op.execute(load("v0012/autovacuum.sql"))
    apply_functions("0012")


def downgrade() -> None:
    op.execute(load("v0012/down.sql"))
    apply_functions("0011")
