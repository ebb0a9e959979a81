"""The served path reads less.

- settings.exact_scan_below: small catalogues are searched exactly instead of through the
  HNSW index (cheaper below a few thousand items, and exact).
- item_neighbors' key carries the score (INCLUDE), so co-visitation votes are index-only.
- rerank() scores the whole pool but explains and diversifies only the candidates that
  can still reach the top k; fewer statements per call.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0009/lean_served_path.sql"))
    apply_functions("0009")


def downgrade() -> None:
    apply_functions("0008")
    op.execute(load("v0009/down.sql"))
