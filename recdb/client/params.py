"""Python values -> the parameters of sql/queries/client.sql, shared by Client and AsyncClient.

Batches travel as one array per column (INSERT ... SELECT FROM unnest(...)): one statement
and one round trip per batch, and the statement-level queue trigger runs once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any, TypeVar

from psycopg.types.json import Jsonb

from recdb.client.errors import InvalidEvent
from recdb.client.types import Event, Item, Status
from recdb.db.sqlfiles import query
from recdb.status import LIVE_WITHIN_S

# Rows per statement: large enough to amortise the round trip, small enough that one
# statement's arrays stay a few MB.
BATCH_SIZE = 5000

CLIENT_SQL = "queries/client.sql"
STATUS_SQL = "queries/status.sql"


T = TypeVar("T")


def batched(rows: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """itertools.batched (Python 3.12+) for 3.11."""
    it = iter(rows)
    while batch := tuple(islice(it, size)):
        yield batch


def first_and_rest(batches: Iterator[T]) -> tuple[T | None, Iterator[T] | None]:
    """The first batch, and the rest (None when there is no second): one batch runs as a
    single autocommitted statement, more run in one transaction (all or nothing)."""
    first = next(batches, None)
    second = next(batches, None)
    return first, None if second is None else chain([second], batches)


def sql(name: str) -> str:
    """A named query of sql/queries/client.sql."""
    return query(CLIENT_SQL, name)


def as_event(e: Event | Sequence[Any]) -> Event:
    """An Event, or a tuple (user_id, item_id, kind[, value[, at]])."""
    event = e if isinstance(e, Event) else Event(*e)
    if event.at is not None and event.at.utcoffset() is None:
        raise InvalidEvent(
            f"event at {event.at.isoformat()} has no time zone: pass an aware datetime "
            "(a naive one would be read in the server session's time zone)"
        )
    return event


def as_item(i: Item | Mapping[str, Any]) -> Item:
    return i if isinstance(i, Item) else Item(**i)


def event_batches(events: Iterable[Event | Sequence[Any]]) -> Iterator[dict[str, list[Any]]]:
    """The `track` query's parameters, BATCH_SIZE events at a time, in the given order."""
    for batch in batched(map(as_event, events), BATCH_SIZE):
        yield {
            "user_ids": [e.user_id for e in batch],
            "item_ids": [e.item_id for e in batch],
            "kinds": [e.kind for e in batch],
            # floats, so an int and a float in one batch do not pick two array types
            "values": [None if e.value is None else float(e.value) for e in batch],
            "occurred_at": [e.at for e in batch],
        }


def item_batches(items: Iterable[Item | Mapping[str, Any]]) -> Iterator[dict[str, list[Any]]]:
    """The `upsert_items` query's parameters. An id given twice keeps its last version (one
    statement may not update a row twice)."""
    latest: dict[int, Item] = {}
    for item in map(as_item, items):
        latest[item.item_id] = item
    for batch in batched(latest.values(), BATCH_SIZE):
        yield {
            "item_ids": [i.item_id for i in batch],
            "titles": [i.title for i in batch],
            "bodies": [i.body for i in batch],
            "attrs": [_json(i.attrs) for i in batch],
            "available": [i.available for i in batch],
        }


def _json(value: Any) -> Jsonb | None:
    """JSON for the server to judge (attrs and filter must be objects: it says so)."""
    if value is None:
        return None
    return Jsonb(dict(value) if isinstance(value, Mapping) else value)


def rerank_params(
    user_id: int,
    k: int,
    candidates: Iterable[int] | None,
    filter: Mapping[str, Any] | None,
    exclude_seen: bool,
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "k": k,
        "candidates": None if candidates is None else list(candidates),
        "filter": _json(filter),
        "exclude_seen": exclude_seen,
    }


def status_from(
    access: Mapping[str, Any], counts: Mapping[str, Any], workers: int | None
) -> Status:
    """Status from the `status_access` row, the counts row (status.sql `status`, or
    client.sql `catalog_status` for a role without the queues) and the live workers."""
    queues = bool(access["queues"])
    return Status(
        items_total=counts["items_total"],
        items_embedded=counts["items_embedded"],
        users_embedded=counts["users_embedded"],
        events_total=counts["events_total"],
        queues_readable=queues,
        queued_items=counts["queued_items"] if queues else None,
        queued_users=counts["queued_users"] if queues else None,
        parked=counts["parked"] if queues else None,
        oldest_queued_age_s=counts["oldest_queued_age_s"] if queues else None,
        workers=workers,
    )


def workers_query() -> tuple[str, dict[str, float]]:
    """recdb status's live-workers query and its parameters."""
    return query(STATUS_SQL, "workers"), {"live_within_s": LIVE_WITHIN_S}


def counts_query(access: Mapping[str, Any]) -> str:
    """The fullest counts query the role may run: recdb status's own, else the catalog."""
    return query(STATUS_SQL, "status") if access["queues"] else sql("catalog_status")
