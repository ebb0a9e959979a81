"""Popularity maintained from what changed equals a full rebuild (revision 0010).

recdb.refresh_popularity() counts the events committed since the snapshot of its last
run and subtracts the counted events deleted (or updated) since; recdb.rebuild_popularity()
(`recdb refresh --full`) recomputes everything. After each round of changes (inserts,
some in a transaction still open during a refresh; retention; erasure; an owner's
UPDATE; a future-dated event) the served scores of both must agree, and the step must
read only the new events, not the event log.
"""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from tests.support.builders import add_items, axis

ITEMS = 30
KINDS = ["click", "view", "purchase", "dislike", "rate", "like", "skip"]


def _add_random_events(
    conn: psycopg.Connection[Any], rng: random.Random, n: int, users: range = range(1, 25)
) -> None:
    rows = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        value = float(rng.randint(1, 5)) if kind == "rate" else None
        item = min(int(rng.expovariate(1 / 6)), ITEMS - 1)
        age = f"{rng.uniform(0, 120):.6f} days"
        rows.append((rng.choice(users), item, kind, value, age))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at)"
            " VALUES (%s, %s, %s, %s, now() - %s::interval)",
            rows,
        )


def _scores(conn: psycopg.Connection[Any]) -> dict[int, float]:
    return dict(conn.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())


def _full(conn: psycopg.Connection[Any]) -> dict[int, float]:
    """The rebuilt scores, inside a transaction rolled back (the incremental state stays)."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT recdb.rebuild_popularity()")
        return _scores(conn)
    finally:
        conn.execute("ROLLBACK")


def _built_at(conn: psycopg.Connection[Any]) -> Any:
    return conn.execute("SELECT built_at FROM recdb.popularity_state").fetchone()[0]


def _assert_same(incremental: dict[int, float], full: dict[int, float]) -> None:
    assert set(incremental) == set(full)
    assert max(full.values()) == pytest.approx(1.0)
    for item, score in full.items():
        assert incremental[item] == pytest.approx(score, rel=1e-9, abs=1e-12), item


def test_incremental_popularity_equals_a_full_rebuild(conn, db_url):
    rng = random.Random(11)
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
    _add_random_events(conn, rng, 300)
    conn.execute("SELECT recdb.refresh_popularity()")  # the first run builds everything
    built = _built_at(conn)
    _assert_same(_scores(conn), _full(conn))

    other = psycopg.connect(db_url)  # a writer whose transaction spans a refresh
    try:
        for round_no in range(5):
            _add_random_events(conn, rng, 40)
            if round_no == 0:  # inserted before a refresh, committed after it
                _add_random_events(other, rng, 25)
            if round_no == 1:  # the late events count now; a deleter spans this refresh
                other.commit()
                other.execute("DELETE FROM recdb.events WHERE user_id = 3")
            if round_no == 2:
                other.commit()
                # retention: an owner backdates some events (UPDATE), retention expires them
                conn.execute(
                    "UPDATE recdb.events SET occurred_at = now() - interval '400 days'"
                    " WHERE event_id IN (SELECT event_id FROM recdb.events"
                    "                    WHERE event_id % 7 = 0)"
                )
                conn.execute("UPDATE recdb.settings SET event_retention = interval '365 days'")
                assert conn.execute("SELECT recdb.apply_retention(1000)").fetchone()[0] > 0
                # an UPDATE that moves counted events to another item and kind
                conn.execute(
                    "UPDATE recdb.events SET item_id = 1, kind = 'purchase'"
                    " WHERE event_id IN (SELECT event_id FROM recdb.events"
                    "                    WHERE event_id % 11 = 0)"
                )
            if round_no == 3:
                conn.execute("SELECT recdb.forget_user(5)")
                # not counted yet when deleted: nothing to subtract
                _add_random_events(conn, rng, 10, users=range(900, 901))
                conn.execute("DELETE FROM recdb.events WHERE user_id = 900")
            if round_no == 4:  # dated in the future (within max_future_skew)
                conn.execute(
                    "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
                    " VALUES (7, 29, 'purchase', now() + interval '4 minutes')"
                )
            conn.execute("SELECT recdb.refresh_popularity()")
            _assert_same(_scores(conn), _full(conn))
        other.commit()
    finally:
        other.close()
    assert _built_at(conn) == built  # every round was an incremental step
    conn.execute("SELECT recdb.refresh_popularity()")
    _assert_same(_scores(conn), _full(conn))
    # an item all of whose events are gone keeps a row at 0
    conn.execute("DELETE FROM recdb.events WHERE item_id = 2")
    conn.execute("SELECT recdb.refresh_popularity()")
    assert conn.execute(
        "SELECT raw, score FROM recdb.item_popularity WHERE item_id = 2"
    ).fetchone() == (0, 0)
    _assert_same(_scores(conn), _full(conn))


def test_changed_knobs_rebuild(conn):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(3)])
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at) VALUES"
        " (1, 0, 'click', now() - interval '10 days'), (1, 1, 'click', now()),"
        " (2, 2, 'purchase', now() - interval '10 days')"
    )
    conn.execute("SELECT recdb.refresh_popularity()")
    for change in (
        "UPDATE recdb.settings SET popularity_half_life = interval '1 day'",
        "UPDATE recdb.event_kinds SET weight = 10 WHERE kind = 'click'",
    ):
        built = _built_at(conn)
        conn.execute(change)
        conn.execute("SELECT recdb.refresh_popularity()")
        assert _built_at(conn) > built
        _assert_same(_scores(conn), _full(conn))
    assert _scores(conn)[1] == 1.0


def test_an_incremental_refresh_reads_only_the_new_events(conn):
    add_items(conn, [{"item_id": i} for i in range(100)])
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
        " SELECT g % 5000, g % 100, 'click', now() - (g % 1000) * interval '1 minute'"
        " FROM generate_series(1, 60000) g"
    )
    conn.execute("SELECT recdb.refresh_popularity()")
    conn.execute("VACUUM ANALYZE recdb.events")  # what autovacuum does: summarise the BRIN
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind)"
        " SELECT g, g % 100, 'purchase' FROM generate_series(1, 50) g"
    )
    # The backend's counters not yet flushed (earlier statements' too): the difference.
    counters = (
        "SELECT seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables"
        " WHERE relid = 'recdb.events'::regclass"
    )
    conn.execute("BEGIN")
    seq_before, fetched_before = conn.execute(counters).fetchone()
    assert conn.execute("SELECT recdb.refresh_popularity()").fetchone()[0] == 50
    seq_after, fetched_after = conn.execute(counters).fetchone()
    conn.execute("COMMIT")
    seq_read, fetched = seq_after - seq_before, fetched_after - fetched_before
    assert seq_read == 0
    assert 50 <= fetched <= 5000  # the new events' block ranges, not the 60,000
    assert _built_at(conn) is not None
    _assert_same(_scores(conn), _full(conn))


def test_recdb_refresh_full_rebuilds_popularity(conn, capsys):
    from recdb.cli import main

    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(3)])
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 0, 'click')")
    assert main(["refresh"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["refresh_popularity"] == 1
    built = _built_at(conn)
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'click')")
    assert main(["refresh"]) == 0
    assert json.loads(capsys.readouterr().out)["refresh_popularity"] == 1  # the one changed
    assert _built_at(conn) == built
    assert main(["refresh", "--full"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["refresh_popularity"] == 2  # the items with events
    assert _built_at(conn) > built


def test_truncating_the_events_forces_a_rebuild(conn):
    add_items(conn, [{"item_id": i} for i in range(3)])
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 0, 'click')")
    conn.execute("SELECT recdb.refresh_popularity()")
    conn.execute("TRUNCATE recdb.events")
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'click')")
    conn.execute("SELECT recdb.refresh_popularity()")
    assert _scores(conn) == {0: 0.0, 1: 1.0}


def test_a_refresh_in_the_transaction_that_wrote_the_events_counts_them_once(conn):
    """A bulk load refreshes before it commits (recdb.datasets.loader): its own events are
    counted at once, and never a second time after the commit."""
    rng = random.Random(5)
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(ITEMS)])
    conn.execute("BEGIN")
    _add_random_events(conn, rng, 80)
    conn.execute("SELECT recdb.refresh_popularity()")  # the first run: a rebuild
    assert _scores(conn)
    conn.execute("COMMIT")
    conn.execute("SELECT recdb.refresh_popularity()")
    _assert_same(_scores(conn), _full(conn))
    conn.execute("BEGIN")
    _add_random_events(conn, rng, 30)
    conn.execute("SELECT recdb.refresh_popularity()")  # an incremental step
    _add_random_events(conn, rng, 30)  # after the refresh, same transaction
    conn.execute("COMMIT")
    conn.execute("SELECT recdb.refresh_popularity()")
    _assert_same(_scores(conn), _full(conn))
