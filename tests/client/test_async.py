"""recdb.AsyncClient: the same calls as Client, as coroutines (asyncio.run, no plugin)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from recdb.client import (
    AsyncClient,
    ClientClosed,
    Event,
    InvalidArgument,
    InvalidEvent,
    Item,
    Recommendation,
    SimilarItem,
    Unavailable,
    UnknownItem,
    UnknownKind,
    params,
)
from tests.support.builders import axis, rerank, set_user_vector


def test_round_trip_track_rerank_upsert_similar_status(db_url, conn, catalog):
    set_user_vector(conn, 1, axis(2))

    async def main() -> None:
        async with AsyncClient(db_url) as client:
            await client.track(1, 300, "click")
            recs = await client.rerank(1, k=8)
            assert all(isinstance(r, Recommendation) for r in recs)
            assert {r.fresh_events for r in recs} == {1} and 300 not in [r.item_id for r in recs]
            expected = rerank(conn, 1, k=8)
            assert [
                (r.rank, r.item_id, r.score, r.because_item_id, r.reason, r.fresh_events)
                for r in recs
            ] == expected
            cands = await client.rerank(1, candidates=[9999, 305, 100])
            assert [r.item_id for r in cands][-1] == 9999 and len(cands) == 3

            at = datetime(2024, 1, 2, tzinfo=UTC)
            assert await client.track_many([Event(2, 100, "like", at=at), (2, 101, "rate", 3)]) == 2
            assert await client.upsert_items([Item(1, "new"), {"item_id": 100, "title": "x"}]) == 2
            similar = await client.similar_items(200, k=4)
            assert all(isinstance(s, SimilarItem) for s in similar) and len(similar) == 4
            assert await client.similar_items(1) == []  # not embedded yet
            status = await client.status()
            assert status.queues_readable and status.items_total == 61 and status.events_total == 3

    asyncio.run(main())
    assert conn.execute("SELECT title FROM recdb.items WHERE item_id = 100").fetchone() == ("x",)
    assert conn.execute(
        "SELECT count(*) FROM recdb.item_queue WHERE item_id IN (1, 100)"
    ).fetchone() == (2,)


def test_errors_are_the_same_exceptions(db_url, catalog, monkeypatch):
    monkeypatch.setattr(params, "BATCH_SIZE", 1)

    async def main() -> None:
        async with AsyncClient(db_url) as client:
            with pytest.raises(UnknownKind):
                await client.track(1, 100, "clik")
            with pytest.raises(UnknownItem):
                await client.similar_items(999)
            with pytest.raises(InvalidArgument, match="k must be between 1 and 10000") as info:
                await client.rerank(1, k=0)
            assert info.value.sqlstate == "22023"
            with pytest.raises(InvalidArgument, match="filter must be a JSON object"):
                await client.rerank(1, filter=[1])
            with pytest.raises(InvalidEvent, match='kind "rate"'):  # third of 3 statements
                await client.track_many([(1, 100, "click"), (1, 101, "click"), (1, 102, "rate")])
            status = await client.status()
            assert status.events_total == 0  # the batches before it rolled back
        with pytest.raises(ClientClosed):
            await client.rerank(1)

    asyncio.run(main())


def test_unreachable_server_and_closed_client(tmp_path):
    async def main() -> None:
        down = AsyncClient(f"host={tmp_path} dbname=nothing", timeout=0.5)
        with pytest.raises(Unavailable, match="No such file or directory"):
            await down.rerank(1)
        with pytest.raises(ClientClosed):
            await down.rerank(1)

    asyncio.run(main())


def test_concurrent_calls_as_the_app_role(app_url, conn, catalog):
    set_user_vector(conn, 5, axis(0))

    async def main() -> list[list[Recommendation]]:
        client = AsyncClient(app_url, max_size=3)  # opened by the first call
        try:
            await asyncio.gather(*(client.track(u, 100, "click") for u in range(10, 20)))
            status = await client.status()
            assert not status.queues_readable and status.events_total == 10
            return await asyncio.gather(*(client.rerank(5, k=5) for _ in range(12)))
        finally:
            await client.close()

    results = asyncio.run(main())
    assert all(r == results[0] for r in results) and len(results[0]) == 5
    assert [r.item_id for r in results[0]] == [row[1] for row in rerank(conn, 5, k=5)]
