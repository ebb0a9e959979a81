"""The trained model's own fold, and a content prior for brand-new items.

- recdb.models.fold_weights: the fold operator a trained model ships (recdb.sequence.fold);
  with that model active, rerank() folds unseen events in the model's terms instead of
  the mean encoder's weighted sum.
- recdb.content_prior + settings.content_prior_weight: items nobody has interacted with yet
  get the popularity their vector predicts (a ridge regression over items that have
  popularity, refitted by the worker's maintenance), so new items rank by what they are.
- refresh_popularity() keeps a zero row for an item whose events all decayed out of the
  window, so "no row" means "never interacted with" (what the content prior is for).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from recdb.db.revision_sql import apply_functions, load

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(load("v0008/fold_and_prior.sql"))
    apply_functions("0008")


def downgrade() -> None:
    apply_functions("0007")
    op.execute(load("v0008/down.sql"))
