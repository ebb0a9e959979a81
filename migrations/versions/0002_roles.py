"""Least-privilege roles: recdb_app, recdb_worker, recdb_readonly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import load

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0002/roles.sql"))


def downgrade() -> None:
    op.execute(load("v0002/down.sql"))
