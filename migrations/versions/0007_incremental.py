"""Costs that grow with what changed: incremental co-visitation and the import ledger.

Schema: covisit_user_items / covisit_counts / covisit_pairs / covisit_runner_up (the
counts behind the co-visitation cosine, kept between runs), covisit_queue (users whose
vectors the worker rewrote), covisit_state, recdb.imports (the `recdb import` ledger).
Functions: sync_covisitation() applies only the changed users; refresh_neighbors() is the
full rebuild; forget_user() subtracts the erased user at once.

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
