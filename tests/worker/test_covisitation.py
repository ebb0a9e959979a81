"""Co-visitation maintained from what changed equals a full rebuild.

Maintenance applies only the users the worker re-encoded (recdb.sync_covisitation): new
events, histories sliding past covisit_history, events deleted, users erased. After each
round of changes the incrementally maintained neighbour lists and counts must be exactly
what `recdb refresh --full` (recdb.refresh_neighbors) computes from scratch.
"""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from recdb.worker import Worker, WorkerConfig
from recdb.worker.maintenance import run_jobs
from tests.support.builders import add_items, axis
from tests.support.tiny_model import tiny_text_encoder

ITEMS = 40
KINDS = ["click", "view", "purchase", "dislike", "rate"]


def _encode(url: str) -> None:
    cfg = WorkerConfig(database_url=url, device="cpu", popularity_interval=3600.0)
    Worker(cfg, text_encoder=tiny_text_encoder()).run(once=True)


def _add_random_events(conn: psycopg.Connection[Any], rng: random.Random, n: int) -> None:
    rows = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        value = float(rng.randint(1, 5)) if kind == "rate" else None
        # skewed items: some pairs co-occur far more than others
        item = min(int(rng.expovariate(1 / 8)), ITEMS - 1)
        rows.append((rng.randint(1, 30), item, kind, value))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO recdb.events (user_id, item_id, kind, value) VALUES (%s, %s, %s, %s)",
            rows,
        )


def _state(conn: psycopg.Connection[Any]) -> dict[str, list[tuple]]:
    return {
        "neighbors": conn.execute(
            "SELECT neighbor_id, item_id, score FROM recdb.item_neighbors ORDER BY 1, 2"
        ).fetchall(),
        "counts": conn.execute("SELECT * FROM recdb.covisit_counts ORDER BY 1").fetchall(),
        "pairs": conn.execute("SELECT * FROM recdb.covisit_pairs ORDER BY 1, 2").fetchall(),
        "sets": conn.execute("SELECT * FROM recdb.covisit_user_items ORDER BY 1, 2").fetchall(),
    }


def _full(conn: psycopg.Connection[Any]) -> dict[str, list[tuple]]:
    """The rebuilt state, inside a transaction rolled back (the incremental one stays)."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT recdb.refresh_neighbors()")
        return _state(conn)
    finally:
        conn.execute("ROLLBACK")


@pytest.mark.parametrize(("history", "neighbors", "seed"), [(6, 3, 7), (10, 5, 2)])
def test_incremental_maintenance_equals_a_full_rebuild(conn, db_url, history, neighbors, seed):
    rng = random.Random(seed)
    # A short history and few neighbours: windows slide and lists fill, so every case of
    # covisit_apply (gained, lost, counts up and down, lists re-entered, lists proved from
    # their reserve or re-ranked) happens.
    conn.execute(
        "UPDATE recdb.settings SET covisit_history = %s, covisit_neighbors = %s",
        (history, neighbors),
    )
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
    _add_random_events(conn, rng, 300)
    _encode(db_url)  # its closing maintenance builds everything the first time
    assert conn.execute("SELECT count(*) FROM recdb.covisit_state").fetchone()[0] == 1
    assert _state(conn) == _full(conn)

    for round_no in range(8):
        _add_random_events(conn, rng, 60)
        if round_no % 4 == 1:  # events deleted (a retention job does this): sets shrink
            conn.execute(
                "DELETE FROM recdb.events WHERE event_id IN"
                " (SELECT event_id FROM recdb.events ORDER BY random() LIMIT 40)"
            )
        if round_no % 4 == 2:  # erasure subtracts the user at once, without a worker
            conn.execute("SELECT recdb.forget_user(%s)", (3 + round_no,))
            assert (
                conn.execute(
                    "SELECT count(*) FROM recdb.covisit_user_items WHERE user_id = %s",
                    (3 + round_no,),
                ).fetchone()[0]
                == 0
            )
        _encode(db_url)
        assert conn.execute("SELECT count(*) FROM recdb.covisit_queue").fetchone()[0] == 0
        incremental = _state(conn)
        assert incremental["neighbors"], "no co-visitation at all: the test data is too thin"
        assert incremental == _full(conn), f"round {round_no}: incremental != full rebuild"
    # the steps really ran incrementally (no rebuild hid a difference)
    built_at = conn.execute("SELECT built_at FROM recdb.covisit_state").fetchone()[0]
    neighbors_at = conn.execute(
        "SELECT finished_at FROM recdb.maintenance WHERE job = 'neighbors'"
    ).fetchone()[0]
    assert neighbors_at > built_at


def test_a_step_claims_only_what_the_worker_queued(conn, db_url):
    """The first step builds; later ones apply the queued users and leave the rest alone."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(6)])
    for user, items in ((1, [0, 1, 2]), (2, [1, 2, 3])):
        conn.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind)"
            " SELECT %s, unnest(%s::bigint[]), 'click'",
            (user, items),
        )
    _encode(db_url)
    assert conn.execute("SELECT count(*) FROM recdb.covisit_queue").fetchone()[0] == 0
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (2, 5, 'click')")
    _encode(db_url)  # re-encodes user 2 only; its maintenance applies user 2 only
    done = run_jobs(conn)
    assert done["sync_covisitation"] == 0  # nothing left: the worker's run applied it
    pair = conn.execute(
        "SELECT users FROM recdb.covisit_pairs WHERE item_id = 5 AND other_id = 1"
    ).fetchone()
    assert pair == (1,)
    assert _state(conn) == _full(conn)


def test_recdb_refresh_runs_the_steps_or_the_full_rebuild(conn, db_url, capsys):
    from recdb.cli import main

    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 0, 'click'), (1, 1, 'click')"
    )
    assert main(["refresh"]) == 0  # nothing built yet: the first step builds everything
    first = json.loads(capsys.readouterr().out)
    assert first["sync_covisitation"] == 0 and first["refresh_popularity"] == 2
    assert main(["refresh", "--full"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["refresh_neighbors"] == 2  # 0 lists 1, 1 lists 0
    assert conn.execute("SELECT count(*) FROM recdb.item_neighbors").fetchone()[0] == 2
