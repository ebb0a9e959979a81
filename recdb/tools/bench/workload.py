"""A shop-shaped event log for `recdb bench --scale`, generated with numpy in seconds
even at 10^7 events.

What makes it look like a shop rather than uniform noise (each one stresses a cost the
uniform bench hides):

- **Zipf item popularity** inside each category (exponent ZIPF): a few items take most
  events, so co-visitation pairs and popularity concentrate as in real logs.
- **Power-law user activity** (Pareto, exponent ACTIVITY_ALPHA; most users have one to
  a few events, some hundreds, and a few HEAVY_EVENTS): the seen-list and the votes of a
  heavy user are what a per-call cost that grows with history would show.
- **Sessions** (geometric, mean SESSION_MEAN events) inside one category; within a
  session, COMPANION_P of the events take the previous item's companion (its neighbour in
  the category's popularity order): pairs that co-occur, the signal co-visitation finds.
- **Interests**: each user has one to three categories; EXPLORE_P of sessions go
  elsewhere (by the catalogue's category sizes).
- **Timestamps** over DAYS days: sessions spread over each user's active span, events a
  minute or two apart inside one; the log is written in time order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdb.tools.bench.config import KIND_P, KINDS

ZIPF = 1.0
ACTIVITY_ALPHA = 1.1
# The cap (a hundredth of a smaller log), and what the HEAVY_USERS most active users get.
HEAVY_EVENTS = 10_000
HEAVY_USERS = 3
SESSION_MEAN = 5.0
COMPANION_P = 0.3
EXPLORE_P = 0.15
DAYS = 180.0
IN_SESSION_GAP_S = 90.0


@dataclass
class Workload:
    """The event log, one entry per event, in time order (ties: generation order)."""

    users: np.ndarray  # int64 user ids, 1..n_users
    items: np.ndarray  # int64 item ids, 1..n_items
    kinds: np.ndarray  # int8 index into KINDS
    values: np.ndarray  # float32; NaN where the kind carries no value
    seconds: np.ndarray  # float64 Unix seconds
    interests: np.ndarray  # per user (index uid - 1): main category index

    def __len__(self) -> int:
        return len(self.users)

    def events_per_user(self, n_users: int) -> np.ndarray:
        """Events per user, index uid - 1."""
        return np.bincount(self.users - 1, minlength=n_users)

    def take(self, sl: slice) -> Workload:
        """A slice of the log (the interests stay whole)."""
        return Workload(
            self.users[sl],
            self.items[sl],
            self.kinds[sl],
            self.values[sl],
            self.seconds[sl],
            self.interests,
        )


def activity(n_events: int, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Events per user (int64, sums to n_events, each >= 1 when n_events >= n_users):
    Pareto-distributed, capped at HEAVY_EVENTS, the HEAVY_USERS most active users at the
    cap when the log is large enough to hold them."""
    if n_users < 1 or n_events < n_users:
        raise ValueError(f"need at least one event per user: {n_events} events, {n_users} users")
    cap = min(HEAVY_EVENTS, max(n_events // 100, 1))
    a = rng.pareto(ACTIVITY_ALPHA, n_users) + 1.0
    if n_events >= 100 * HEAVY_EVENTS:
        a[np.argsort(-a)[:HEAVY_USERS]] = np.inf
    counts = np.ones(n_users, dtype=np.float64)
    rest = float(n_events - n_users)
    capped = ~np.isfinite(a)
    counts[capped] = cap
    rest -= float((cap - 1) * capped.sum())
    for _ in range(20):  # spread the rest by weight; whoever hits the cap stops growing
        free = ~capped & (counts < cap)
        if rest <= 0 or not free.any():
            break
        share = a[free] / a[free].sum() * rest
        grown = np.minimum(counts[free] + share, cap)
        rest -= float((grown - counts[free]).sum())
        counts[free] = grown
    out = np.floor(counts).astype(np.int64)
    short = n_events - int(out.sum())
    if short > 0:  # rounding: the remainder to users below the cap, most active first
        room = np.flatnonzero(out < cap)
        order = room[np.argsort(-a[room], kind="stable")]
        out[order[np.arange(short) % len(order)]] += 1
    return out


def shop_events(
    n_events: int,
    n_users: int,
    categories: np.ndarray,
    seed: int,
    now: float,
) -> Workload:
    """n_events events of n_users users over the items whose category index is
    `categories[item_id - 1]`; see the module docstring for the shape."""
    rng = np.random.default_rng([seed, 17, n_events])
    n_items = len(categories)
    n_cat = int(categories.max()) + 1
    members = [np.flatnonzero(categories == c) for c in range(n_cat)]
    for m in members:
        rng.shuffle(m)  # a category's popularity order
    sizes = np.array([len(m) for m in members], dtype=np.float64)
    cat_p = sizes / sizes.sum()
    cdfs = []
    for m in members:
        w = 1.0 / np.arange(1, len(m) + 1, dtype=np.float64) ** ZIPF
        cdfs.append(np.cumsum(w) / w.sum() if len(m) else np.zeros(0))

    counts = activity(n_events, n_users, rng)
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    first = np.zeros(n_events, dtype=bool)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    first[starts] = True

    # Interests: 1-3 categories per user, drawn by category size.
    n_int = rng.integers(1, 4, size=n_users)
    interest = rng.choice(n_cat, size=(n_users, 3), p=cat_p)

    # Sessions: a new one at each user's first event, else with p = 1 / SESSION_MEAN.
    new_session = first | (rng.random(n_events) < 1.0 / SESSION_MEAN)
    session = np.cumsum(new_session) - 1
    s_user = user[new_session]
    explore = rng.random(len(s_user)) < EXPLORE_P
    pick = rng.integers(0, 3, size=len(s_user)) % n_int[s_user]
    s_cat = np.where(explore, rng.choice(n_cat, size=len(s_user), p=cat_p), interest[s_user, pick])
    cat = s_cat[session]

    # Items: a Zipf rank inside the session's category; companions take the previous
    # event's rank with its lowest bit flipped (its neighbour in popularity order).
    rank = np.zeros(n_events, dtype=np.int64)
    u = rng.random(n_events)
    for c in range(n_cat):
        at = np.flatnonzero(cat == c)
        if len(at) and len(members[c]):
            rank[at] = np.minimum(np.searchsorted(cdfs[c], u[at]), len(members[c]) - 1)
    companion = ~new_session & (rng.random(n_events) < COMPANION_P)
    prev = np.flatnonzero(companion) - 1
    rank[companion] = rank[prev] ^ 1
    item = np.zeros(n_events, dtype=np.int64)
    for c in range(n_cat):
        at = np.flatnonzero(cat == c)
        if len(at) and len(members[c]):
            r = np.minimum(rank[at], len(members[c]) - 1)
            item[at] = members[c][r] + 1

    # Times: each user active from a start day to now; sessions spread over that span,
    # events IN_SESSION_GAP_S apart (exponential) inside one.
    span = rng.uniform(1.0, DAYS, size=n_users) * 86400.0
    n_sessions = np.bincount(s_user, minlength=n_users)
    session_gap = span / np.maximum(n_sessions, 1)
    gap = np.where(
        new_session,
        rng.exponential(1.0, n_events) * session_gap[user],
        rng.exponential(IN_SESSION_GAP_S, n_events),
    )
    gap[first] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[starts], counts)
    t = np.minimum(now - span[user] + elapsed, now)

    kinds = rng.choice(len(KINDS), size=n_events, p=KIND_P).astype(np.int8)
    values = np.full(n_events, np.nan, dtype=np.float32)
    rated = kinds == KINDS.index("rate")
    values[rated] = rng.integers(1, 6, size=int(rated.sum()))

    order = np.argsort(t, kind="stable")
    assert item.min() >= 1 and item.max() <= n_items
    return Workload(
        users=user[order] + 1,
        items=item[order],
        kinds=kinds[order],
        values=values[order],
        seconds=t[order],
        interests=interest[np.arange(n_users), 0],
    )


def write_parquet(w: Workload, path: str) -> None:
    """The log as an adopter's export: user_id, item_id, kind, value, occurred_at (UTC)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = np.array(KINDS, dtype=object)
    table = pa.table(
        {
            "user_id": pa.array(w.users, pa.int64()),
            "item_id": pa.array(w.items, pa.int64()),
            "kind": pa.array(names[w.kinds], pa.string()),
            "value": pa.array(w.values, pa.float32(), mask=np.isnan(w.values)),
            "occurred_at": pa.array((w.seconds * 1e6).astype(np.int64), pa.timestamp("us", "UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=100_000)
