"""The split of `recdb eval`: chronological leave-one-out, the user sample, the two phases.

Per user the last interaction is the test target, the second-last the validation target,
the rest training (recdb.tools.eval.metrics). The validation phase sees the training
events; the test phase sees training + validation events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recdb.datasets.movielens import Rating
from recdb.tools.eval import metrics

K = 10

SPLIT = (
    "chronological leave-one-out per user: last interaction = test, second-last = "
    "validation, rest = train (users with < 3 interactions: train only, not evaluated)"
)
HISTORY = "test ranking sees train + validation; validation ranking sees train only"


def split_ratings(ratings: Sequence[Rating]) -> dict[int, metrics.Split[int]]:
    """Leave-one-out over rating indices (not item ids), so repeated (user, item) pairs stay
    distinct: ``ratings[i]`` for every index in a split."""
    return metrics.chronological_leave_one_out(
        (r.user_id, idx, float(r.timestamp)) for idx, r in enumerate(ratings)
    )


def sample_users(candidates: Iterable[int], n: int | None, seed: int) -> list[int]:
    """All candidates, sorted; or a seeded sample of ``n`` of them, sorted."""
    users = sorted(candidates)
    if n is not None and n < len(users):
        users = sorted(random.Random(seed).sample(users, n))
    return users


@dataclass
class Phase:
    """One scoring round: the history every user has, and the item each user is asked for."""

    name: str
    history: dict[int, list[int]]
    targets: dict[int, int]


def phases(
    ratings: Sequence[Rating],
    splits: Mapping[int, metrics.Split[int]],
    users: Sequence[int],
    validate: bool,
) -> list[tuple[Phase, list[int]]]:
    """(phase, rating indices to add before it): valid sees train, test sees train + valid."""
    out = []
    loaded: set[int] = set()
    for name in ("valid", "test") if validate else ("test",):
        idx = {u: s.train if name == "valid" else s.history for u, s in splits.items()}
        new = sorted(i for ids in idx.values() for i in ids if i not in loaded)
        loaded.update(new)
        target = {u: getattr(splits[u], name) for u in users}
        out.append(
            (
                Phase(
                    name,
                    {u: [ratings[i].item_id for i in ids] for u, ids in idx.items()},
                    {u: ratings[i].item_id for u, i in target.items() if i is not None},
                ),
                new,
            )
        )
    return out
