"""recdb.AsyncClient: the same calls as recdb.Client for asyncio code (FastAPI, aiohttp)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from itertools import chain
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.rows import args_row, dict_row
from psycopg_pool import AsyncConnectionPool

from recdb.client.errors import (
    ClientClosed,
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
from recdb.client.sync import APPLICATION_NAME
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


class AsyncClient:
    """recdb.Client's calls as coroutines, over an asyncio connection pool.

    The pool opens at the first call (or `await client.open()`, or `async with`), inside
    the running event loop; use one AsyncClient per event loop and per process.
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
        self._conninfo = libpq_url(database_url(url))
        self._timeout = timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "application_name": application_name},
            name="recdb",
            open=False,  # an asyncio pool opens inside a running loop
        )
        self._opened = self._closed = False
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        """Open the pool (idempotent); the first call does it when not done before."""
        check_process(self._pid)
        async with self._opening:  # concurrent first calls: one opens, the others wait
            if self._closed:
                raise ClientClosed("this AsyncClient is closed")
            if self._opened:
                return
            try:  # wait for the first connection, as Client does
                await self._pool.open(wait=True, timeout=self._timeout)
            except psycopg.Error as exc:  # the pool closed itself; say why
                self._closed = True
                try:
                    await (await psycopg.AsyncConnection.connect(self._conninfo)).close()
                except psycopg.Error as reason:
                    raise translate(reason) from reason
                raise translate(exc) from exc
            self._opened = True

    @asynccontextmanager
    async def _connection(
        self, invalid: type[InvalidArgument] = InvalidArgument
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        await self.open()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, invalid) from exc

    async def _write(
        self, name: str, batches: Iterator[dict[str, Any]], invalid: type[InvalidArgument]
    ) -> int:
        first, rest = first_and_rest(batches)
        if first is None:
            return 0
        async with self._connection(invalid) as conn:
            if rest is None:
                return (await conn.execute(sql(name), first)).rowcount
            written = 0
            async with conn.transaction():
                for params in chain([first], rest):
                    written += (await conn.execute(sql(name), params)).rowcount
            return written

    async def track(
        self,
        user_id: int,
        item_id: int,
        kind: str,
        value: float | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one event; the next rerank() for the user counts it (zero lag)."""
        await self._write(
            "track", event_batches([Event(user_id, item_id, kind, value, at)]), InvalidEvent
        )

    async def track_many(self, events: Iterable[Event | Sequence[Any]]) -> int:
        """Record events, all or none; returns how many."""
        return await self._write("track", event_batches(events), InvalidEvent)

    async def upsert_items(self, items: Iterable[Item | Mapping[str, Any]]) -> int:
        """Insert items or replace their content, all or none; returns the rows written."""
        return await self._write("upsert_items", item_batches(items), InvalidItem)

    async def rerank(
        self,
        user_id: int,
        k: int = DEFAULT_K,
        candidates: Iterable[int] | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude_seen: bool = DEFAULT_EXCLUDE_SEEN,
    ) -> list[Recommendation]:
        """rerank() in rank order: the catalog's top k, or `candidates` re-ordered."""
        params = rerank_params(user_id, k, candidates, filter, exclude_seen)
        async with (
            self._connection() as conn,
            conn.cursor(row_factory=args_row(Recommendation)) as cur,
        ):
            await cur.execute(sql("client_rerank"), params)
            return await cur.fetchall()

    async def similar_items(self, item_id: int, k: int = DEFAULT_K) -> list[SimilarItem]:
        """Nearest available items by embedding; [] while the item is not embedded yet."""
        async with (
            self._connection() as conn,
            conn.cursor(row_factory=args_row(SimilarItem)) as cur,
        ):
            await cur.execute(sql("similar_items"), {"item_id": item_id, "k": k})
            return await cur.fetchall()

    async def status(self) -> Status:
        """Coverage, and queue depth and workers when the role may read them."""
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            access = await (await cur.execute(sql("status_access"))).fetchone()
            assert access is not None
            counts = await (await cur.execute(counts_query(access))).fetchone()
            assert counts is not None
            workers = None
            if access["workers"]:
                workers = len(await (await cur.execute(*workers_query())).fetchall())
        return status_from(access, counts, workers)

    async def close(self) -> None:
        """Close the pool's connections; the client cannot be used afterwards."""
        self._closed = True
        await self._pool.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
