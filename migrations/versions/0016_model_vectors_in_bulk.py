"""A model is activated in bulk, and served whole from one commit.

- The searched item vectors move to recdb.item_vectors, partitioned by vector space
  (0: text vectors, N: model N), one partition attached at a time, each with its own
  HNSW index; items.embedding keeps the served vector (every other read uses it) but
  loses its HNSW index (sql/v0016/item_vectors.sql).
- recdb.activate_model() attaches a partition built beside the served one
  (recdb.staged_items -> build_vector_space(): one bulk index build) and switches
  items.embedding, item_next and the users in one transaction. Before, it re-queued
  every item, and the worker rewrote the catalogue one row at a time through the live
  HNSW index (3 ms a row: hours at 10^6 items) while rerank() mixed both models.

Upgrading copies the served vectors and builds their index (about a minute per 10^5
items on 2 cores); writes to recdb.items wait meanwhile.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0016/item_vectors.sql"))
    apply_functions("0016")


def downgrade() -> None:
    apply_functions("0015")
    op.execute("DROP TRIGGER items_deleted ON recdb.items")
    op.execute(
        "DROP FUNCTION recdb.items_deleted(), recdb.build_vector_space(bigint),"
        " recdb.stage_stored_vectors(bigint, boolean), recdb.swap_vector_space(bigint),"
        " recdb.rebuild_item_vectors(), recdb.sync_item_vectors(bigint[]),"
        " recdb.drop_staged_space(bigint)"
    )
    op.execute(load("v0016/down.sql"))
