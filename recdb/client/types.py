"""What the client takes and returns: frozen dataclasses, one per row shape of the SQL API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# rerank()'s and similar_items()'s own defaults (sql/functions/070_api.sql), repeated once
# here for Python signatures; tests/client checks they still match the database's.
DEFAULT_K = 20
DEFAULT_EXCLUDE_SEEN = True


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One row of rerank(), in rank order (1 = best)."""

    rank: int
    item_id: int
    score: float
    because_item_id: int | None  # the liked item nearest to this one; None for cold start
    reason: str  # because_item_id in words: 'similar to Heat (1995)', 'popular', 'new', ...
    fresh_events: int  # events folded in by this call that the stored user vector lacks


@dataclass(frozen=True, slots=True)
class SimilarItem:
    """One row of similar_items()."""

    rank: int
    item_id: int
    score: float


@dataclass(frozen=True, slots=True)
class Event:
    """An event to track; `at` None means the server's now(), an aware datetime otherwise."""

    user_id: int
    item_id: int
    kind: str
    value: float | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """The columns of recdb.items an application owns (and the app role may write)."""

    item_id: int
    title: str
    body: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    available: bool = True


@dataclass(frozen=True, slots=True)
class Status:
    """Coverage and queue state as far as the connected role may read it.

    The app role (recdb_app) may not read the queues or the worker table: then
    `queues_readable` is False and the queue fields are None. A login role that is also
    in recdb_readonly sees them all.
    """

    items_total: int
    items_embedded: int
    users_embedded: int
    events_total: int
    queues_readable: bool
    queued_items: int | None = None
    queued_users: int | None = None
    parked: int | None = None
    oldest_queued_age_s: float | None = None  # None also when nothing is queued
    workers: int | None = None  # live workers (heartbeat within recdb.status.LIVE_WITHIN_S)
