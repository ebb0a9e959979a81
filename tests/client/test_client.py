"""recdb.Client against a real database: what it writes, what it returns, what it raises."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from recdb.client import (
    DEFAULT_K,
    Client,
    ClientClosed,
    Event,
    InvalidArgument,
    InvalidEvent,
    InvalidItem,
    Item,
    PermissionDenied,
    RecdbError,
    Recommendation,
    SimilarItem,
    Unavailable,
    UnknownItem,
    UnknownKind,
    params,
)
from recdb.client.types import DEFAULT_EXCLUDE_SEEN
from tests.support.builders import add_events, axis, rerank, set_user_vector
from tests.support.roles import with_role


def test_tracked_event_counts_in_the_next_rerank(client, conn, catalog):
    set_user_vector(conn, 1, axis(1))  # the worker's vector, before the new event
    client.track(1, 200, "click")
    recs = client.rerank(1, k=10)
    assert all(isinstance(r, Recommendation) for r in recs)
    assert [r.rank for r in recs] == list(range(1, 11))
    assert {r.fresh_events for r in recs} == {1}  # folded in by the call, no worker ran
    assert 200 not in [r.item_id for r in recs]  # and already counts as seen
    assert [vars_of(r) for r in recs] == rerank(conn, 1, k=10)


def vars_of(r: Recommendation) -> tuple:
    return (r.rank, r.item_id, r.score, r.because_item_id, r.reason, r.fresh_events)


def test_track_many_writes_every_event_in_order_and_queues_each_user(client, conn, catalog):
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    n = client.track_many(
        [
            Event(1, 100, "click"),
            Event(1, 101, "rate", 4, at),
            (2, 102, "view"),
            (2, 103, "rate", 4.5),
        ]
    )
    assert n == 4
    rows = conn.execute(
        "SELECT user_id, item_id, kind, value, occurred_at = %s"
        " FROM recdb.events ORDER BY event_id",
        (at,),
    ).fetchall()
    assert rows == [
        (1, 100, "click", None, False),
        (1, 101, "rate", 4.0, True),
        (2, 102, "view", None, False),
        (2, 103, "rate", 4.5, False),
    ]
    queued = conn.execute("SELECT DISTINCT user_id FROM recdb.user_queue ORDER BY 1").fetchall()
    assert queued == [(1,), (2,)]
    assert client.track_many([]) == 0


def test_track_many_is_all_or_nothing_across_batches(client, conn, catalog, monkeypatch):
    monkeypatch.setattr(params, "BATCH_SIZE", 2)  # 5 events = 3 statements
    events = [Event(1, 100 + i, "click") for i in range(4)] + [Event(1, 105, "clik")]
    with pytest.raises(UnknownKind):
        client.track_many(events)
    assert conn.execute("SELECT count(*) FROM recdb.events").fetchone() == (0,)
    assert client.track_many(events[:4]) == 4  # the client's connection is usable again


def test_upsert_items_writes_text_and_requeues_only_content_changes(client, conn):
    def queued() -> list[int]:
        return [r[0] for r in conn.execute("SELECT item_id FROM recdb.item_queue ORDER BY 1")]

    assert (
        client.upsert_items([Item(1, "one"), {"item_id": 2, "title": "two", "attrs": {"a": 1}}])
        == 2
    )
    assert queued() == [1, 2]
    conn.execute("DELETE FROM recdb.item_queue")  # as a worker would once encoded
    assert client.upsert_items([Item(1, "one"), Item(2, "two", attrs={"a": 1})]) == 0
    assert queued() == []  # nothing changed: not rewritten, not re-queued
    assert client.upsert_items([Item(1, "one", available=False)]) == 1
    assert queued() == []  # availability is no reason to re-encode
    assert client.upsert_items([Item(2, "first"), Item(2, "2nd", "body", {"b": [2]})]) == 1
    assert queued() == [2]
    row = conn.execute(
        "SELECT title, body, attrs, available FROM recdb.items WHERE item_id = 2"
    ).fetchone()
    assert row == ("2nd", "body", {"b": [2]}, True)  # the last version of an id given twice
    assert conn.execute("SELECT available FROM recdb.items WHERE item_id = 1").fetchone() == (
        False,
    )


@pytest.mark.parametrize(
    ("call", "error", "sqlstate", "message"),
    [
        (lambda c: c.track(1, 100, "clik"), UnknownKind, "23503", "Key (kind)=(clik)"),
        (lambda c: c.track(1, 999, "click"), UnknownItem, "23503", "Key (item_id)=(999)"),
        (lambda c: c.track(1, 100, "rate", 9), InvalidEvent, "23514", 'for kind "rate"'),
        (lambda c: c.track(1, 100, "rate"), InvalidEvent, "23514", "value NULL is invalid"),
        (
            lambda c: c.track(1, 100, "click", at=datetime.now(UTC) + timedelta(days=1)),
            InvalidEvent,
            "23514",
            "occurred_at",
        ),
        (
            lambda c: c.track(1, 100, "click", at=datetime(2024, 1, 1)),
            InvalidEvent,
            None,
            "time zone",
        ),
        (lambda c: c.track(1, 100, "rate", 1e300), InvalidEvent, "22003", "out of range"),
        (lambda c: c.rerank(1, k=0), InvalidArgument, "22023", "k must be between 1 and 10000"),
        (lambda c: c.rerank(1, k=10001), InvalidArgument, "22023", "(got 10001)"),
        (lambda c: c.rerank(None), InvalidArgument, "22004", "user_id must not be NULL"),
        (lambda c: c.rerank(1, filter=["x"]), InvalidArgument, "22023", "got a JSON array"),
        (lambda c: c.rerank(1, candidates=[3, None]), InvalidArgument, "22004", "position 2"),
        (lambda c: c.similar_items(999), UnknownItem, "P0002", "item_id 999 does not exist"),
        (lambda c: c.similar_items(100, k=0), InvalidArgument, "22023", "similar_items: k"),
        (lambda c: c.upsert_items([Item(5, None)]), InvalidItem, "23502", '"title"'),
        (lambda c: c.upsert_items([Item(5, "t", attrs=[1])]), InvalidItem, "23514", "attrs"),
    ],
)
def test_errors_carry_their_meaning_message_and_sqlstate(
    client, catalog, call, error, sqlstate, message
):
    with pytest.raises(RecdbError) as info:
        call(client)
    assert type(info.value) is error
    assert info.value.sqlstate == sqlstate
    assert message in str(info.value)
    if sqlstate is not None:
        assert isinstance(info.value.__cause__, psycopg.Error)
        assert info.value.__cause__.sqlstate == sqlstate


def test_unknown_user_gets_the_cold_start_order_not_an_error(client, conn, catalog):
    recs = client.rerank(12345, k=5)
    assert len(recs) == 5 and {r.reason for r in recs} <= {"popular", "new"}
    assert [vars_of(r) for r in recs] == rerank(conn, 12345, k=5)


def test_rerank_arguments_reach_the_function(client, conn, catalog):
    add_events(conn, 1, [300, 301], "click")
    set_user_vector(conn, 1, axis(1))
    for kwargs in [
        {"k": 7},
        {"k": 5, "filter": {"topic": 2}},
        {"k": 30, "exclude_seen": False},
        {"candidates": [310, 9999, 205, 310, 100]},  # a duplicate, an unknown id
    ]:
        assert [vars_of(r) for r in client.rerank(1, **kwargs)] == rerank(conn, 1, **kwargs)
    got = client.rerank(1, candidates=(i for i in [310, 9999, 205, 310, 100]))  # any iterable
    assert [r.item_id for r in got][-1] == 9999 and len(got) == 4  # each once, unknown last
    assert 300 in [r.item_id for r in client.rerank(1, k=60, exclude_seen=False)]


def test_similar_items_returns_typed_neighbours_or_nothing_before_encoding(client, conn, catalog):
    got = client.similar_items(200, k=5)
    assert all(isinstance(s, SimilarItem) for s in got) and len(got) == 5
    expected = conn.execute("SELECT rank, item_id, score FROM similar_items(200, 5)").fetchall()
    assert [(s.rank, s.item_id, s.score) for s in got] == expected
    assert all(200 < s.item_id < 300 for s in got)
    client.upsert_items([Item(1, "not embedded yet")])
    assert client.similar_items(1) == []


def test_python_defaults_are_the_functions_defaults(conn):
    args = conn.execute(
        "SELECT pg_get_function_arguments('recdb.rerank'::regproc),"
        " pg_get_function_arguments('recdb.similar_items'::regproc)"
    ).fetchone()
    for signature in args:
        assert re.search(rf"\bk integer DEFAULT {DEFAULT_K}\b", signature), signature
    assert f"exclude_seen boolean DEFAULT {str(DEFAULT_EXCLUDE_SEEN).lower()}" in args[0]


def test_status_shows_what_the_role_may_read(client, conn, db_url, catalog):
    add_events(conn, 1, [100, 101], "click")
    set_user_vector(conn, 1, axis(0))
    full = client.status()
    assert full.queues_readable
    assert (full.items_total, full.items_embedded, full.users_embedded, full.events_total) == (
        60,
        60,
        1,
        2,
    )
    assert (full.queued_items, full.queued_users, full.parked, full.workers) == (60, 1, 0, 0)
    assert full.oldest_queued_age_s is not None and full.oldest_queued_age_s >= 0
    with Client(with_role(db_url, conn, "recdb_app")) as app:
        limited = app.status()
    assert not limited.queues_readable
    assert (limited.queued_items, limited.queued_users, limited.parked, limited.workers) == (
        None,
        None,
        None,
        None,
    )
    assert (limited.items_total, limited.items_embedded, limited.events_total) == (60, 60, 2)
    with Client(with_role(db_url, conn, "recdb_readonly")) as readonly:
        same = readonly.status()
    assert replace(same, oldest_queued_age_s=None) == replace(full, oldest_queued_age_s=None)


def test_everything_works_as_a_login_role_in_recdb_app_only(app_url, conn, catalog):
    member_of = conn.execute(
        "SELECT array_agg(b.rolname::text ORDER BY 1) FROM pg_auth_members m"
        " JOIN pg_roles r ON r.oid = m.member JOIN pg_roles b ON b.oid = m.roleid"
        " WHERE r.rolname = %s",
        (psycopg.conninfo.conninfo_to_dict(app_url)["user"],),
    ).fetchone()[0]
    assert member_of == ["recdb_app"]
    with Client(app_url) as app:
        assert app.upsert_items([Item(1, "new"), Item(100, "renamed", attrs={"topic": 0})]) == 2
        app.track(7, 100, "click")
        assert app.track_many([Event(7, 101, "like"), Event(7, 1, "view")]) == 2
        set_user_vector(conn, 7, axis(0))  # as the worker (another role) would
        app.track(7, 102, "rate", 5.0, datetime.now(UTC))
        recs = app.rerank(7, k=5)
        assert len(recs) == 5 and recs[0].fresh_events == 1
        assert len(app.rerank(7, candidates=[100, 200])) == 2
        assert len(app.similar_items(200, k=3)) == 3
        assert app.status().items_total == 61
    assert conn.execute("SELECT title FROM recdb.items WHERE item_id = 100").fetchone() == (
        "renamed",
    )


def test_a_role_that_may_not_write_gets_permission_denied(db_url, conn, catalog):
    with (
        Client(with_role(db_url, conn, "recdb_readonly")) as readonly,
        pytest.raises(PermissionDenied) as info,
    ):
        readonly.track(1, 100, "click")
    assert info.value.sqlstate == "42501"


def test_threads_share_one_client(db_url, conn, catalog):
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {}

    def work(user: int) -> None:
        try:
            for i in range(10):
                client.track(user, 100 + i, "click")
                seen.setdefault(user, []).append(client.rerank(user, k=5)[0].fresh_events)
        except BaseException as exc:
            errors.append(exc)

    with Client(db_url, max_size=3) as client:
        threads = [threading.Thread(target=work, args=(u,)) for u in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    # each thread read its own writes: 1, 2, ..., 10 fresh events, never another user's
    assert seen == {u: list(range(1, 11)) for u in range(1, 9)}
    assert conn.execute("SELECT count(*) FROM recdb.events").fetchone() == (80,)


def test_a_client_refuses_to_cross_fork(client, catalog):
    assert client.rerank(1, k=1)
    pid = os.fork()
    if pid == 0:  # the child must not touch the parent's sockets
        try:
            client.rerank(1, k=1)
        except ClientClosed:
            os._exit(0)
        except BaseException:
            os._exit(2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.rerank(1, k=1)  # the parent's pool is intact


def test_closed_client_and_unreachable_server(db_url, tmp_path):
    c = Client(db_url)
    c.close()
    with pytest.raises(ClientClosed):
        c.rerank(1)
    with pytest.raises(Unavailable, match="No such file or directory") as info:
        Client(f"host={tmp_path} dbname=nothing", timeout=0.5)  # libpq's reason, not a timeout
    assert info.value.sqlstate is None
    nobody = psycopg.conninfo.make_conninfo(db_url, user="nobody_at_all")
    with pytest.raises(Unavailable, match='role "nobody_at_all" does not exist'):
        Client(nobody, timeout=0.5)
