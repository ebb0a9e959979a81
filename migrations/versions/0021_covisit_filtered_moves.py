"""Co-visitation steps that check only the keys that can cross a list's boundary.

- recdb.covisit_apply(): an item whose count rose falls in every list that holds it, and
  one whose count fell rises in every list it is paired with. Before, every such row was
  checked (three or four key lookups each, one of them in the biggest table); now a row
  goes on to the checks only where the move can matter: a listed item that may now be at
  or below its list's gate (its stored score gives the pair count, so no pair lookup is
  needed to rule the rest out), an outsider that now passes the bound (the gate when
  there is none). On a 3 x 10^6-event shop, of 860,000 such rows in a step of 3,000
  events, 13,000 go on; the lists written are the same, row for row
  (tests/worker/test_covisitation.py).

Functions only.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28
"""

from __future__ import annotations

from recdb.db.revision_sql import apply_functions

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0021")


def downgrade() -> None:
    apply_functions("0020")
