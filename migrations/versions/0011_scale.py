"""Costs that grow with what changed, at the size of a real shop.

- rerank()'s exploration reads only the explore x 50 most promising brand-new items,
  whatever the filter (a selective filter walked most of them).
- Co-visitation lists are stored without the member's count (item_neighbors.score =
  users(i, j) / sqrt(users(j)); rerank() applies 1 / sqrt(users(i))) and kept by checks
  of (key, id) pairs against a gate and a bound (covisit_runner_up), so a step no longer
  rewrites or re-ranks every list holding an item whose count moved. The next step
  rebuilds every list once (sql/v0011/covisit_keys.sql).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0011/covisit_keys.sql"))
    apply_functions("0011")


def downgrade() -> None:
    op.execute(load("v0011/down.sql"))
    apply_functions("0010")
