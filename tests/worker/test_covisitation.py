"""Co-visitation maintained from what changed equals a full rebuild.

Maintenance applies only the users the worker re-encoded (recdb.sync_covisitation): new
events, histories sliding past covisit_history, events deleted, users erased. After each
round of changes the incrementally maintained neighbour lists and counts must be exactly
what `recdb refresh --full` (recdb.refresh_neighbors) computes from scratch.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from recdb.db import connect, embedded, schema
from recdb.worker import Worker, WorkerConfig
from recdb.worker.maintenance import run_jobs
from tests.support.builders import add_items, axis
from tests.support.database import TEST_DIM
from tests.support.tiny_model import tiny_text_encoder

ITEMS = 40
KINDS = ["click", "view", "purchase", "dislike", "rate"]


def _encode(url: str) -> None:
    cfg = WorkerConfig(database_url=url, device="cpu", popularity_interval=3600.0)
    Worker(cfg, text_encoder=tiny_text_encoder()).run(once=True)


def _add_random_events(
    conn: psycopg.Connection[Any], rng: random.Random, n: int, shape: str = "skewed"
) -> None:
    rows = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        value = float(rng.randint(1, 5)) if kind == "rate" else None
        if shape == "skewed":  # some pairs co-occur far more than others
            item, user = min(int(rng.expovariate(1 / 8)), ITEMS - 1), rng.randint(1, 30)
        else:  # "ties": uniform items over many small sets, so most pairs count 1 user
            item, user = rng.randrange(ITEMS), rng.randint(1, 80)
        rows.append((user, item, kind, value))
    if shape == "ties":  # and a heavy user whose window slides every round
        rows += [(99, rng.randrange(ITEMS), "purchase", None) for _ in range(12)]
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


def _check_bounds(conn: psycopg.Connection[Any], neighbors: int) -> None:
    """What the incremental step relies on, from the counts now: per list, every listed
    (key, id) beats the gate and every item left out is at most it; every item left out
    of list and reserve is at most the bound (no bound: there is none)."""
    bad = conn.execute(
        """
        WITH k AS (
            SELECT p.item_id AS j, p.other_id AS i, p.users::float8 / sqrt(c.users::float8) AS k,
                   EXISTS (SELECT 1 FROM recdb.item_neighbors nb
                           WHERE nb.item_id = p.item_id AND nb.neighbor_id = p.other_id) AS listed,
                   EXISTS (SELECT 1 FROM recdb.covisit_reserve rs
                           WHERE rs.item_id = p.item_id AND rs.neighbor_id = p.other_id) AS reserved
            FROM recdb.covisit_pairs p JOIN recdb.covisit_counts c ON c.item_id = p.other_id)
        SELECT k.j, k.i, k.k, k.listed, k.reserved, ru.gate, ru.gate_id, ru.score, ru.neighbor_id
        FROM k LEFT JOIN recdb.covisit_runner_up ru ON ru.item_id = k.j
        WHERE CASE WHEN k.listed
                   THEN ru.item_id IS NOT NULL AND (k.k, -k.i) <= (ru.gate, -ru.gate_id)
                   ELSE ru.item_id IS NULL OR (k.k, -k.i) > (ru.gate, -ru.gate_id)
                        OR (NOT k.reserved AND (ru.score IS NULL
                                                OR (k.k, -k.i) > (ru.score, -ru.neighbor_id)))
              END
        """
    ).fetchall()
    assert bad == [], f"gate or bound broken: {bad[:5]}"
    short = conn.execute(
        "SELECT j.item_id FROM recdb.covisit_counts j"
        " WHERE (SELECT count(*) FROM recdb.item_neighbors nb WHERE nb.item_id = j.item_id)"
        "     < least(%s, (SELECT count(*) FROM recdb.covisit_pairs p"
        "                  WHERE p.item_id = j.item_id))",
        (neighbors,),
    ).fetchall()
    assert short == []


def _check_votes(conn: psycopg.Connection[Any], history: int) -> None:
    """rerank()'s votes (the member's count applied at query time) are the sums of the
    cosines users(i, j) / sqrt(users(i) * users(j)) of the listed pairs, each recent item
    voting through at most covisit_fanout of the lists that hold it, its most similar (to
    the stored real's precision)."""
    for (user,) in conn.execute("SELECT DISTINCT user_id FROM recdb.covisit_user_items").fetchall():
        got = dict(
            conn.execute("SELECT * FROM recdb.covisit_votes(%s, %s)", (user, history)).fetchall()
        )
        want = dict(
            conn.execute(
                "SELECT nb.item_id, sum(p.users / sqrt(ci.users::float8 * cj.users))"
                " FROM (SELECT DISTINCT h.item_id FROM recdb.recent_positive_items(%s, %s) h) r"
                " JOIN (SELECT x.*, row_number() OVER (PARTITION BY x.neighbor_id"
                "                    ORDER BY x.score DESC, x.item_id) AS rk"
                "       FROM recdb.item_neighbors x) nb ON nb.neighbor_id = r.item_id"
                "  AND nb.rk <= (SELECT s.covisit_fanout FROM recdb.settings s)"
                " JOIN recdb.covisit_pairs p ON p.item_id = nb.item_id AND p.other_id = r.item_id"
                " JOIN recdb.covisit_counts ci ON ci.item_id = r.item_id"
                " JOIN recdb.covisit_counts cj ON cj.item_id = nb.item_id"
                " GROUP BY nb.item_id",
                (user, history),
            ).fetchall()
        )
        assert got.keys() == want.keys()
        off = {i: (got[i], want[i]) for i in want if abs(got[i] - want[i]) > 1e-6 * want[i]}
        assert off == {}, f"user {user}"


def _full(conn: psycopg.Connection[Any]) -> dict[str, list[tuple]]:
    """The rebuilt state, inside a transaction rolled back (the incremental one stays)."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT recdb.refresh_neighbors()")
        return _state(conn)
    finally:
        conn.execute("ROLLBACK")


@pytest.mark.parametrize(
    ("history", "neighbors", "fanout", "seed", "shape"),
    [
        (6, 3, 100, 7, "skewed"),
        (10, 5, 2, 2, "skewed"),
        (5, 3, 100, 11, "ties"),
        (8, 4, 3, 5, "ties"),
    ],
)
def test_incremental_maintenance_equals_a_full_rebuild(
    conn, db_url, history, neighbors, fanout, seed, shape
):
    rng = random.Random(seed)
    # A short history and few neighbours: windows slide and lists fill, so every case of
    # covisit_apply (gained, lost, counts up and down, lists re-entered, lists proved from
    # their reserve or re-ranked) happens. "ties": most pairs count one user, so (key, id)
    # pairs decide at the gate, and a heavy user's window slides (counts fall) each round.
    # A small fanout: recent items held by more lists than that vote through their best.
    conn.execute(
        "UPDATE recdb.settings SET covisit_history = %s, covisit_neighbors = %s,"
        " covisit_fanout = %s",
        (history, neighbors, fanout),
    )
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
    _add_random_events(conn, rng, 300, shape)
    _encode(db_url)  # its closing maintenance builds everything the first time
    assert conn.execute("SELECT count(*) FROM recdb.covisit_state").fetchone()[0] == 1
    assert _state(conn) == _full(conn)

    for round_no in range(8):
        _add_random_events(conn, rng, 60, shape)
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
        _check_bounds(conn, neighbors)
        _check_votes(conn, history)
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


def test_truncating_the_events_rebuilds_the_co_visitation(conn, db_url):
    """TRUNCATE fires no row trigger, so no user is queued for what it removed: the next
    step must rebuild from the events, not apply the new users against the old sets."""
    rng = random.Random(3)
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
    _add_random_events(conn, rng, 300)
    _encode(db_url)
    assert _state(conn)["neighbors"]
    conn.execute("TRUNCATE recdb.events")
    conn.execute(  # two of the users again, with other histories; the rest are gone
        "INSERT INTO recdb.events (user_id, item_id, kind)"
        " SELECT u, i, 'click' FROM unnest('{1,2}'::bigint[]) u, generate_series(0, 5) i"
    )
    _encode(db_url)
    assert _state(conn) == _full(conn)


def _pg_ctl(home: Path, *args: str) -> None:
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", *args], pgdata=embedded.data_dir(home), user=user, timeout=60)


def test_a_crash_costs_one_rebuild_and_never_leaves_wrong_lists():
    """The working state is UNLOGGED (revision 0012): a crash empties it. The served lists
    and counts (logged) stay as they were, and the next step rebuilds from the events
    instead of applying users against empty sets."""
    home = Path(tempfile.mkdtemp(prefix="rc-"))  # short: the server's socket lives inside
    try:
        url = embedded.start(home, cleanup="stop")
        schema.upgrade(url, embedding_dim=TEST_DIM)
        rng = random.Random(9)
        with connect(url, autocommit=True) as conn:
            conn.execute("UPDATE recdb.settings SET covisit_history = 6, covisit_neighbors = 3")
            add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
            _add_random_events(conn, rng, 300)
        _encode(url)
        with connect(url, autocommit=True) as conn:
            served = _state(conn)["neighbors"]
            assert served
        pgdata = embedded.data_dir(home)
        _pg_ctl(home, "stop", "-m", "immediate")  # no shutdown checkpoint: crash recovery
        _pg_ctl(home, "start", "-o", f"-h '' -k {pgdata}", "-l", str(pgdata / "log"))
        with connect(url, autocommit=True) as conn:
            after = _state(conn)
            assert after["neighbors"] == served  # rerank() goes on serving the lists
            assert after["pairs"] == [] and after["sets"] == []
            assert conn.execute("SELECT count(*) FROM recdb.covisit_state").fetchone() == (0,)
            _add_random_events(conn, rng, 60)
        _encode(url)  # its step rebuilds
        with connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM recdb.covisit_state").fetchone() == (1,)
            assert _state(conn) == _full(conn)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


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


def _versions(conn: psycopg.Connection[Any]) -> dict[str, set[tuple]]:
    """Every list row with its row version (xmin): a rewritten row gets a new one."""
    return {
        table: set(conn.execute(f"SELECT {key}, xmin::text FROM recdb.{table}").fetchall())
        for table, key in (
            ("item_neighbors", "item_id, neighbor_id"),
            ("covisit_reserve", "item_id, neighbor_id"),
            ("covisit_runner_up", "item_id, 0"),
        )
    }


def test_a_popular_items_count_change_rewrites_no_list_that_holds_it(conn, db_url):
    """Item 0 is in every list 1..12 (three users each with item j and one of 21..23): a
    user who adds or drops item 0 alone changes its count, so its cosine with each j, but
    no list's members. The step rewrites item 0's own rows (users(0) scales its list), and
    no row of the lists that hold it, nor their reserves or bounds."""
    conn.execute("UPDATE recdb.settings SET covisit_history = 10, covisit_neighbors = 3")
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(24)])
    rows = [(100 * j + a, item) for j in range(1, 13) for a in (1, 2, 3) for item in (0, j, 20 + a)]
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind)"
        " SELECT unnest(%s::bigint[]), unnest(%s::bigint[]), 'click'",
        ([u for u, _ in rows], [i for _, i in rows]),
    )
    _encode(db_url)
    assert _state(conn) == _full(conn)
    holding = {
        j for (j,) in conn.execute("SELECT item_id FROM recdb.item_neighbors WHERE neighbor_id = 0")
    }
    assert set(range(1, 13)) <= holding

    def others(versions: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
        return {t: {r for r in v if r[0] != 0} for t, v in versions.items()}

    for change in ("rises", "falls"):
        before = _versions(conn)
        if change == "rises":
            conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (7, 0, 'click')")
            _encode(db_url)
        else:  # erasure: the count falls at once
            conn.execute("SELECT recdb.forget_user(7)")
        assert conn.execute("SELECT users FROM recdb.covisit_counts WHERE item_id = 0").fetchone()[
            0
        ] == (37 if change == "rises" else 36)
        after = _versions(conn)
        assert others(after) == others(before), f"count {change}: lists holding 0 were rewritten"
        own = {r for r in after["item_neighbors"] if r[0] == 0}
        assert own and own.isdisjoint(before["item_neighbors"])  # item 0's list: rescaled
        assert _state(conn) == _full(conn)
        _check_bounds(conn, 3)
        _check_votes(conn, 10)
