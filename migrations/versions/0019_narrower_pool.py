"""A narrower pool for rerank() to score.

- recdb.settings.candidate_factor defaults to 2 (was 3): the pool holds the 2 x k
  nearest items (at least k + 10). A database still at 3 moves to 2; another value
  stays.
- rerank() adds the k + 10 most voted co-visited items (was pool_size of them).

On MovieLens-100K every `recdb eval` figure is unchanged; rank_pool() scores and explains
about half the items (see README, Performance).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0019/narrower_pool.sql"))
    apply_functions("0019")


def downgrade() -> None:
    apply_functions("0018")
    op.execute(load("v0019/down.sql"))
