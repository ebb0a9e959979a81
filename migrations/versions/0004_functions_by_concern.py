"""Functions by concern: sql/functions/ becomes the one current definition of every function.

Every recdb function, trigger and function grant is (re)defined from sql/functions/
(idempotent files, applied in order by apply_functions(); later revisions that change a
function edit those files and call it again, see recdb/db/revision_sql.py). What changes
besides the layout:

- the item-queue upsert has one definition, recdb.enqueue_items(bigint[]), called by the
  items trigger and activate_model();
- "the user's recent positive items" has one definition, recdb.recent_positive_items():
  the newest events of kinds with weight > 0, each flagged liked unless a rating at or
  below value_center. Co-visitation counts them all, as before; the explanation takes
  the liked ones among the newest explain_history (it used to take the newest
  explain_history liked ones: a user whose recent window holds low ratings now has
  fewer, never other, items to be explained by).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load, released_function, replaceable

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0004")


def downgrade() -> None:
    # Back to the released 0003 definitions, re-run from the frozen files: 0001's
    # functions and triggers, then 0002's SECURITY DEFINER on the queue triggers (which
    # CREATE OR REPLACE reset), then 0003's activate_model(). Grants are kept as they are.
    op.execute(replaceable(load("v0001/functions.sql")))
    op.execute("ALTER FUNCTION recdb.items_changed() SECURITY DEFINER")
    op.execute("ALTER FUNCTION recdb.events_changed() SECURITY DEFINER")
    op.execute(released_function("v0003/models.sql", "recdb.activate_model"))
    # Nothing calls these any more (a leftover caller makes the DROP fail, not cascade).
    op.execute("DROP FUNCTION recdb.recent_positive_items(bigint, integer)")
    op.execute("DROP FUNCTION recdb.enqueue_items(bigint[])")
