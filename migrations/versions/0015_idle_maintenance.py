"""The maintenance schedule holds when there is nothing to apply.

- recdb.sync_covisitation() records a step that found no re-encoded user to apply
  (rows 0): the neighbour lists are current as of it. Before, the job's finish time
  stayed where the last applied step left it, so once an idle shop passed the worker's
  `--popularity-interval`, its maintenance thread found the job overdue on every check
  and ran back to back (hundreds of popularity steps a second) until a user was
  re-encoded; `recdb.maintenance_status` and the metrics' last-finished gauge aged with it.

- recdb_readonly may read recdb.covisit_queue: its distinct users are the metrics gauge
  recdb_covisitation_backlog (the maintenance yields to waiting users, so under load the
  neighbour lists trail the re-encoded users; the gauge says by how many).

No table changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_functions("0015")
    op.execute(load("v0015/readonly_backlog.sql"))


def downgrade() -> None:
    op.execute(load("v0015/down.sql"))
    apply_functions("0013")  # 0014 changed no function
