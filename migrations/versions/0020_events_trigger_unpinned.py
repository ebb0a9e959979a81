"""The events trigger without a per-call search_path switch.

- recdb.events_changed() (the statement trigger behind every INSERT, UPDATE and DELETE
  on recdb.events) no longer pins its search_path with a SET clause, which costs a GUC
  switch and restore per statement: nothing in it is looked up by name (schema-qualified
  tables and functions, OPERATOR(pg_catalog.op) for every operator), so a caller's
  search_path still cannot change what it does (tests/sql/test_security.py).

~6 us less server CPU per single-row insert, of the ~51 the trigger adds (see README,
Performance). Nothing else changes.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27
"""

from __future__ import annotations

from recdb.db.revision_sql import apply_functions

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0020")


def downgrade() -> None:
    apply_functions("0019")
