"""Triggers enqueue changed items/users and wake workers with NOTIFY."""

from __future__ import annotations

import threading

import psycopg

from recdb.config import NOTIFY_CHANNEL
from tests.support.builders import add_events, add_items, axis


def _queue(conn, table):
    """Distinct ids queued (the user queue may hold several rows per user)."""
    col = "item_id" if table == "item_queue" else "user_id"
    return [r[0] for r in conn.execute(f"SELECT DISTINCT {col} FROM recdb.{table} ORDER BY 1")]


def test_new_items_are_queued(conn):
    add_items(conn, [{"item_id": i} for i in (3, 1, 2)])
    assert _queue(conn, "item_queue") == [1, 2, 3]


def test_text_change_requeues_but_embedding_write_does_not(conn):
    add_items(conn, [{"item_id": 1, "title": "a"}, {"item_id": 2, "title": "b"}])
    conn.execute("DELETE FROM recdb.item_queue")
    conn.execute("UPDATE recdb.items SET embedding = %s WHERE item_id = 1", (axis(0),))
    conn.execute("UPDATE recdb.items SET available = false WHERE item_id = 2")
    assert _queue(conn, "item_queue") == []
    conn.execute("UPDATE recdb.items SET title = 'a2' WHERE item_id = 1")
    conn.execute("UPDATE recdb.items SET attrs = '{\"x\": 1}' WHERE item_id = 2")
    assert _queue(conn, "item_queue") == [1, 2]


def test_requeue_resets_a_parked_row(conn):
    add_items(conn, [{"item_id": 1}])
    conn.execute("UPDATE recdb.item_queue SET attempts = 5, parked_at = now(), last_error = 'boom'")
    conn.execute("UPDATE recdb.items SET body = 'fixed' WHERE item_id = 1")
    row = conn.execute(
        "SELECT attempts, parked_at, last_error, changes FROM recdb.item_queue"
    ).fetchone()
    assert row == (0, None, None, 2)


def test_events_queue_each_user_once_per_statement(conn):
    add_items(conn, [{"item_id": 1}, {"item_id": 2}])
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind)"
        " VALUES (7, 1, 'view'), (7, 2, 'view'), (8, 1, 'click'), (7, 1, 'click')"
    )
    add_events(conn, 8, [2])
    assert _queue(conn, "user_queue") == [7, 8]
    rows = conn.execute("SELECT user_id, count(*) FROM recdb.user_queue GROUP BY 1 ORDER BY 1")
    assert rows.fetchall() == [(7, 1), (8, 2)]


def test_writers_never_wait_on_each_other_for_the_user_queue(db_url, conn):
    """Two open transactions queue the same users in opposite orders: no lock wait."""
    add_items(conn, [{"item_id": 1}])
    a = psycopg.connect(db_url)
    b = psycopg.connect(db_url)
    try:
        for c in (a, b):
            c.execute("SET lock_timeout = '2s'")
        a.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'view')")
        b.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (2, 1, 'view')")
        a.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (2, 1, 'view')")
        b.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'view')")
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()
    assert _queue(conn, "user_queue") == [1, 2]


def test_bulk_copy_of_events_queues_distinct_users(conn):
    add_items(conn, [{"item_id": i} for i in range(10)])
    with (
        conn.cursor() as cur,
        cur.copy("COPY recdb.events (user_id, item_id, kind) FROM STDIN") as cp,
    ):
        for n in range(5000):
            cp.write_row((n % 37, n % 10, "view"))
    assert _queue(conn, "user_queue") == list(range(37))
    assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 37


def test_deleting_events_requeues_the_user(conn):
    add_items(conn, [{"item_id": 1}])
    add_events(conn, 7, [1])
    conn.execute("DELETE FROM recdb.user_queue")
    conn.execute("DELETE FROM recdb.events WHERE user_id = 7")
    assert _queue(conn, "user_queue") == [7]


def test_listen_receives_the_notification(db_url):
    listener = psycopg.connect(db_url, autocommit=True)
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    got: list[str] = []

    def wait() -> None:
        for n in listener.notifies(timeout=10, stop_after=2):
            got.append(n.payload)

    t = threading.Thread(target=wait)
    t.start()
    with psycopg.connect(db_url, autocommit=True) as writer:
        writer.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'x')")
        writer.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (5, 1, 'view')")
    t.join(timeout=15)
    listener.close()
    assert sorted(got) == ["items", "users"]


def test_rolled_back_write_leaves_no_queue_row_and_no_notification(db_url):
    listener = psycopg.connect(db_url, autocommit=True)
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    with psycopg.connect(db_url) as writer:
        writer.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'x')")
        writer.rollback()
    assert list(listener.notifies(timeout=0.5)) == []
    assert listener.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 0
    listener.close()
