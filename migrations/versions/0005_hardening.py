"""Hardening and privacy: column-level app grants, zero-lag under any commit order, bounded
event times, erasure (recdb.forget_user) and retention, role adoption check.

Schema: events.txid (the inserting transaction), users.encoded_snapshot (what the worker
saw), settings.max_future_skew / event_retention, recdb.erasures (audit),
recdb.maintenance (+ maintenance_status view); recdb_app may INSERT only the columns an
app owns. Functions: sql/functions/ as of this revision (the events trigger checks
occurred_at, user_vector() folds by snapshot visibility, popularity never decays from a
future time, forget_user(), apply_retention(), record_maintenance()).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import adopt_roles, apply_functions, load, load_with

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load_with("v0005/hardening.sql", adopt_roles=str(adopt_roles()).lower()))
    apply_functions("0005")


def downgrade() -> None:
    # The 0004 functions first: the newer ones use the columns down.sql drops.
    apply_functions("0004")
    op.execute("DROP TRIGGER events_take_xid ON recdb.events")
    op.execute(
        "DROP FUNCTION recdb.forget_user(bigint), recdb.apply_retention(integer),"
        " recdb.record_maintenance(text, interval, bigint), recdb.events_take_xid()"
    )
    op.execute(load("v0005/down.sql"))
