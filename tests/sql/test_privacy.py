"""Erasure on request and retention: what recdb stores about a person can be removed."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from recdb import status
from recdb.worker import Worker, WorkerConfig
from tests.support.builders import add_events, add_items, axis, set_user_vector
from tests.support.roles import connect_as, login_role
from tests.support.tiny_model import tiny_text_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def _rows_naming(conn, user_id: int) -> dict[str, int]:
    """Every row in schema recdb with a user_id column equal to user_id, per table."""
    found = {}
    tables = conn.execute(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'recdb' AND c.column_name = 'user_id'"
        " AND t.table_type = 'BASE TABLE'"
    ).fetchall()
    assert len(tables) >= 3  # events, users, user_queue at least
    for (table,) in tables:
        n = conn.execute(
            sql.SQL("SELECT count(*) FROM recdb.{} WHERE user_id = %s").format(
                sql.Identifier(table)
            ),
            (user_id,),
        ).fetchone()[0]
        found[table] = n
    return found


def _everything_mentioning(conn, user_id: int) -> list[str]:
    """Rows of any recdb table whose text form mentions the id as a whole word in a
    user-ish column, e.g. an audit row that copied it (there must be none)."""
    hits = []
    for (table,) in conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'recdb' AND table_type = 'BASE TABLE'"
    ).fetchall():
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'recdb'"
                " AND table_name = %s AND (column_name LIKE '%%user%%' OR data_type IN"
                " ('jsonb', 'json'))",
                (table,),
            ).fetchall()
        ]
        for col in cols:
            n = conn.execute(
                sql.SQL("SELECT count(*) FROM recdb.{} WHERE {}::text ~ %s").format(
                    sql.Identifier(table), sql.Identifier(col)
                ),
                (rf"(^|\D){user_id}(\D|$)",),
            ).fetchone()[0]
            if n:
                hits.append(f"{table}.{col}: {n}")
    return hits


def test_forget_user_removes_every_row_naming_the_user(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "title": f"film {i}"} for i in range(6)])
    add_events(conn, 424242, [1, 2, 3])
    add_events(conn, 7, [1, 4])
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    add_events(conn, 424242, [5])  # queued, not encoded yet
    app = connect_as(db_url, login_role(conn, "recdb_app"))
    try:
        counts = app.execute("SELECT recdb.forget_user(424242)").fetchone()[0]
    finally:
        app.close()
    assert counts["events"] == 4 and counts["users"] == 1 and counts["user_queue"] >= 1
    assert all(n == 0 for n in _rows_naming(conn, 424242).values())
    assert _everything_mentioning(conn, 424242) == []
    audit = conn.execute("SELECT called_by, counts FROM recdb.erasures").fetchall()
    assert len(audit) == 1 and audit[0][0] == login_role(conn, "recdb_app")
    assert audit[0][1]["events"] == 4
    # a user who comes back starts cold
    assert (
        conn.execute("SELECT count(*) FROM recdb.user_vector(424242) WHERE stored").fetchone()[0]
        == 0
    )
    # the other user is untouched
    assert _rows_naming(conn, 7)["events"] == 2


def test_forget_user_validates_its_argument(conn):
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="user_id"):
        conn.execute("SELECT recdb.forget_user(NULL)")
    assert conn.execute("SELECT recdb.forget_user(12345)").fetchone()[0]["events"] == 0


def test_popularity_and_covisitation_stop_counting_a_forgotten_user(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(6)])
    for u in range(3):
        add_events(conn, u, [0, 1])
    add_events(conn, 99, [4, 5, 4, 5, 4, 5])  # only user 99 makes 4 and 5 popular/co-visited
    conn.execute("SELECT recdb.refresh_popularity(), recdb.refresh_neighbors()")
    pop = dict(conn.execute("SELECT item_id, raw FROM recdb.item_popularity").fetchall())
    assert pop.get(4, 0) > 0
    assert (
        conn.execute(
            "SELECT count(*) FROM recdb.item_neighbors WHERE neighbor_id IN (4, 5)"
        ).fetchone()[0]
        > 0
    )
    conn.execute("SELECT recdb.forget_user(99)")
    snap = status.collect(conn)
    assert snap["maintenance"]["erasures_applied"] is False
    assert "pending the next maintenance run" in status.render(snap)
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    snap = status.collect(conn)
    assert snap["maintenance"]["erasures_applied"] is True
    assert "erasure    last" in status.render(snap) and ": applied" in status.render(snap)
    pop = dict(conn.execute("SELECT item_id, raw FROM recdb.item_popularity").fetchall())
    assert pop.get(4, 0) == 0 and pop.get(5, 0) == 0
    assert (
        conn.execute(
            "SELECT count(*) FROM recdb.item_neighbors WHERE neighbor_id IN (4, 5)"
        ).fetchone()[0]
        == 0
    )
    row = conn.execute(
        "SELECT last_erasure_at, maintained_at >= last_erasure_at FROM recdb.maintenance_status"
    ).fetchone()
    assert row[0] is not None and row[1]


def test_retention_deletes_old_events_in_batches_and_requeues_their_users(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
        " SELECT 1, i % 4, 'click', now() - interval '400 days' FROM generate_series(1, 25) i"
    )
    add_events(conn, 1, [3])
    add_events(conn, 2, [2])
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    conn.execute("UPDATE recdb.settings SET event_retention = interval '365 days'")
    set_user_vector(conn, 1, axis(0), norm=25.0)  # as encoded from the old events
    batches = []  # what the worker's maintenance does: one short transaction per batch
    while n := conn.execute("SELECT recdb.apply_retention(10)").fetchone()[0]:
        batches.append(n)
    assert batches == [10, 10, 5]
    assert conn.execute("SELECT count(*) FROM recdb.events WHERE user_id = 1").fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM recdb.user_queue WHERE user_id = 1").fetchone()[0] >= 1
    )
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    assert conn.execute("SELECT event_count FROM recdb.users WHERE user_id = 1").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM recdb.events WHERE user_id = 2").fetchone()[0] == 1


def test_retention_is_off_by_default(conn):
    assert conn.execute("SELECT event_retention FROM recdb.settings").fetchone()[0] is None
    assert conn.execute("SELECT recdb.apply_retention(10)").fetchone()[0] == 0
