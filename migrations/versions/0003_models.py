"""Model registry (recdb.models), items.text_embedding, recdb.activate_model().

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import load

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0003/models.sql"))


def downgrade() -> None:
    op.execute(load("v0003/down.sql"))
