"""A co-visitation vote reads a bounded range.

- recdb.settings.covisit_fanout (100): each of a user's recent items votes for at most
  this many of the items whose lists hold it, the ones it is most similar to
  (recdb.covisit_votes); before, every holder, which for a popular item at 10^6 items
  is thousands of rows per call.
- item_neighbors is keyed (item_id, neighbor_id) and indexed (neighbor_id, score DESC,
  item_id), so that read is index-only and stops at the bound; the separate item_id
  index goes (sql/v0018/covisit_fanout.sql).

Upgrading rebuilds item_neighbors' two indexes: rerank() and the maintenance wait while
they build (a few seconds per 10^6 list rows on 2 cores).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0018/covisit_fanout.sql"))
    apply_functions("0018")


def downgrade() -> None:
    apply_functions("0016")
    op.execute(load("v0018/down.sql"))
