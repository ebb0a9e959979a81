"""Costs that grow with what changed: incremental maintenance and the import ledger.

(Work in progress in this session; frozen when released.)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0007/maintenance.sql"))
    op.execute(load("v0007/imports.sql"))
    apply_functions("0007")


def downgrade() -> None:
    apply_functions("0006")
    op.execute(load("v0007/imports_down.sql"))
    op.execute(load("v0007/down.sql"))
