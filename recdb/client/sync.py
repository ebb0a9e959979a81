"""recdb.Client: the SQL API for threaded code, over a psycopg_pool connection pool."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.rows import args_row, dict_row
from psycopg_pool import ConnectionPool

from recdb.client.errors import (
    InvalidArgument,
    InvalidEvent,
    InvalidItem,
    check_process,
    translate,
)
from recdb.client.params import (
    counts_query,
    event_batches,
    first_and_rest,
    item_batches,
    rerank_params,
    sql,
    status_from,
    workers_query,
)
from recdb.client.types import (
    DEFAULT_EXCLUDE_SEEN,
    DEFAULT_K,
    Event,
    Item,
    Recommendation,
    SimilarItem,
    Status,
)
from recdb.db.connect import database_url, libpq_url

APPLICATION_NAME = "recdb client"


class Client:
    """Track events, write items and rank, from any number of threads.

    Every call borrows a pooled connection for one statement (autocommit), so threads share
    one Client. The pool is not fork-aware: create the Client in each process, after the
    fork (a client used in a child raises ClientClosed rather than share the parent's
    sockets). `url` defaults to RECDB_DATABASE_URL, else the embedded server. The
    constructor connects (Unavailable after `timeout` seconds without a connection).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self._pid = os.getpid()
        conninfo = libpq_url(database_url(url))
        options = {"autocommit": True, "application_name": application_name}
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,  # seconds a call waits for a free connection
            kwargs=options,
            name="recdb",
            open=False,
        )
        try:
            # Wait for the first connection: a wrong URL fails here, and a first call that
            # found none ready would grow the pool for nothing (it then rotates over both).
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:  # the pool closed itself; its timeout names no reason
            try:
                psycopg.connect(conninfo, **options).close()
            except psycopg.Error as reason:
                raise translate(reason) from reason
            raise translate(exc) from exc

    @contextmanager
    def _connection(
        self, invalid: type[InvalidArgument] = InvalidArgument
    ) -> Iterator[psycopg.Connection[Any]]:
        check_process(self._pid)
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, invalid) from exc

    def _write(
        self, name: str, batches: Iterator[dict[str, Any]], invalid: type[InvalidArgument]
    ) -> int:
        first, rest = first_and_rest(batches)
        if first is None:
            return 0
        with self._connection(invalid) as conn:
            if rest is None:
                return conn.execute(sql(name), first).rowcount
            with conn.transaction():
                return sum(conn.execute(sql(name), p).rowcount for p in chain([first], rest))

    def track(
        self,
        user_id: int,
        item_id: int,
        kind: str,
        value: float | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one event; the next rerank() for the user counts it (zero lag)."""
        self._write(
            "track", event_batches([Event(user_id, item_id, kind, value, at)]), InvalidEvent
        )

    def track_many(self, events: Iterable[Event | Sequence[Any]]) -> int:
        """Record events (Event or (user_id, item_id, kind[, value[, at]]) tuples), all or
        none; returns how many."""
        return self._write("track", event_batches(events), InvalidEvent)

    def upsert_items(self, items: Iterable[Item | Mapping[str, Any]]) -> int:
        """Insert items or replace their title/body/attrs/available (a text change re-queues
        the item for encoding), all or none; returns the rows inserted or changed."""
        return self._write("upsert_items", item_batches(items), InvalidItem)

    def rerank(
        self,
        user_id: int,
        k: int = DEFAULT_K,
        candidates: Iterable[int] | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude_seen: bool = DEFAULT_EXCLUDE_SEEN,
    ) -> list[Recommendation]:
        """rerank() in rank order: the catalog's top k, or `candidates` re-ordered."""
        params = rerank_params(user_id, k, candidates, filter, exclude_seen)
        with self._connection() as conn, conn.cursor(row_factory=args_row(Recommendation)) as cur:
            return cur.execute(sql("client_rerank"), params).fetchall()

    def similar_items(self, item_id: int, k: int = DEFAULT_K) -> list[SimilarItem]:
        """Nearest available items by embedding; [] while the item is not embedded yet."""
        with self._connection() as conn, conn.cursor(row_factory=args_row(SimilarItem)) as cur:
            return cur.execute(sql("similar_items"), {"item_id": item_id, "k": k}).fetchall()

    def status(self) -> Status:
        """Coverage, and queue depth and workers when the role may read them."""
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            access = cur.execute(sql("status_access")).fetchone()
            assert access is not None
            counts = cur.execute(counts_query(access)).fetchone()
            assert counts is not None
            workers = len(cur.execute(*workers_query()).fetchall()) if access["workers"] else None
        return status_from(access, counts, workers)

    def close(self) -> None:
        """Close the pool's connections; the client cannot be used afterwards."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
