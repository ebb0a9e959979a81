"""A narrower pool for rerank() to score.

- recdb.settings.candidate_factor defaults to 2 (was 3): the pool holds the 2 x k
  nearest items (at least k + 10). A database still at 3 moves to 2; another value
  stays.
- rerank() adds the k + 10 most voted co-visited items (was pool_size of them).
- covisit_votes() takes the items to leave out: rerank() passes the seen ones, which can
  neither join nor score the pool, so they are not summed.

On MovieLens-100K `recdb eval` gives the mean and text encoders the same figures, the
sequence encoder 0.0006 less test NDCG@10 (0.0001 more on validation); at k = 20
rank_pool() scores 70 items instead of 113-120 there (see README, Performance).

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
