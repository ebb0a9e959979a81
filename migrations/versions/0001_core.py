"""Core schema: items, events, event kinds, users, queues, HNSW index, triggers, rerank().

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import load

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0001/schema.sql"))
    op.execute(load("v0001/functions.sql"))


def downgrade() -> None:
    op.execute(load("v0001/down.sql"))
