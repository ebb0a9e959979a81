"""rerank()'s exploration candidates follow the items as they change.

- recdb.list_new_items() and the items trigger keep recdb.new_items (items with a served
  vector nobody has interacted with, by content prior) current as vectors are written:
  a new item is explored from the moment the worker encodes it, not from the next
  maintenance run, and the maintenance re-scores the listed items instead of rebuilding
  the list from every item (a cost that grew with the catalogue: 1.1 s at 10^5 items).
- The list starts from a rebuild (sql/v0013/new_items.sql).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0013")
    op.execute(load("v0013/new_items.sql"))


def downgrade() -> None:
    apply_functions("0012")
    op.execute(load("v0013/down.sql"))
