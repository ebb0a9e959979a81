"""Costs that grow with what changed, at the size of a real shop.

- rerank()'s exploration reads only the explore x 50 most promising brand-new items,
  whatever the filter (a selective filter walked most of them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

from recdb.db.revision_sql import apply_functions

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0011")


def downgrade() -> None:
    apply_functions("0010")
