"""The served path: zero-lag under every snapshot, rerank() doing only the work its knobs ask.

- user_vector() folds exactly the events the worker's snapshot did not see (txid at or
  after its xmin, not visible in it), dropping the "xmin < xmax" shortcut: a snapshot's
  xmax is the newest completed xid + 1, so a writer newer than all of them is in flight
  while xmin = xmax, and its event could sit below the watermark unseen. New index
  events_user_txid (user_id, txid) keeps the fold a short range scan. The fold no longer
  compares event ids with the watermark, so the BEFORE STATEMENT trigger that took the
  xid before the event id (events_take_xid) is dropped: one trigger call less per INSERT.
- The events trigger validates inside its queue insert (recdb.refuse_event() raises for a
  bad row): one statement per INSERT instead of two.
- items.embedding storage MAIN (was EXTERNAL), existing rows rewritten: with the sequence
  model's text_embedding beside it, the served vector was TOASTed out of line and every
  distance rerank() computed paid a TOAST fetch.
- rerank() counts the co-visitation votes once (recdb.covisit_votes(), one index range
  per recent item) and only when covisit_weight <> 0; rank_pool() takes them as
  arguments (new signature; the old one is dropped) and joins instead of scanning CTEs
  per row; seen/pool exclusions are hashed sub-selects, not linear array scans.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0006/served_path.sql"))
    apply_functions("0006")
    op.execute(load("v0006/drop_replaced.sql"))


def downgrade() -> None:
    apply_functions("0005")
    op.execute(load("v0006/down.sql"))
