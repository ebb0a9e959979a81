"""What an attacker holding the app role (recdb_app) tries, and what stops it.

Each test is a scenario from the security review: planted vectors, chosen event ids,
poisoned timestamps. The app role writes exactly the columns an app owns.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.support.builders import add_events, add_items, axis, rerank
from tests.support.roles import connect_as, login_role


@pytest.fixture
def app(conn, db_url):
    add_items(conn, [{"item_id": i, "title": f"item {i}", "embedding": axis(i)} for i in range(5)])
    c = connect_as(db_url, login_role(conn, "recdb_app"))
    yield c
    c.close()


def _vec(v: np.ndarray) -> str:
    return "'[" + ",".join(f"{x:g}" for x in v) + "]'"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("embedding", _vec(axis(3))),
        ("text_embedding", _vec(axis(3))),
        ("text_key", "'copied-from-item-1'"),
        ("encoder", "'all-MiniLM-L6-v2'"),
        ("embedded_at", "now() + interval '1 day'"),
        ("created_at", "now() + interval '10 years'"),
        ("updated_at", "now() - interval '1 day'"),
    ],
    ids=lambda v: v if v.isidentifier() else "",
)
def test_app_cannot_insert_an_item_with_worker_owned_columns(app, conn, column, value):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            f"INSERT INTO recdb.items (item_id, title, {column}) VALUES (99, 'planted', {value})"
        )
    assert conn.execute("SELECT count(*) FROM recdb.items WHERE item_id = 99").fetchone()[0] == 0


def test_app_inserts_items_with_the_columns_it_owns(app, conn):
    app.execute(
        "INSERT INTO recdb.items (item_id, title, body, attrs, available)"
        " VALUES (42, 'ok', 'body', '{\"genre\": [\"x\"]}', true)"
    )
    row = conn.execute(
        "SELECT embedding, text_embedding, text_key, encoder FROM recdb.items WHERE item_id = 42"
    ).fetchone()
    assert row == (None, None, None, None)


def test_app_cannot_choose_the_event_id(app, conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO recdb.events (event_id, user_id, item_id, kind)"
            " OVERRIDING SYSTEM VALUE VALUES (9000000000000000000, 1, 1, 'click')"
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, recorded_at)"
            " VALUES (1, 1, 'click', now() - interval '1 year')"
        )
    app.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'click')")
    assert rerank(app, 1, k=3)[0][5] == 1  # the event counts at once


@pytest.mark.parametrize(
    "when",
    ["now() + interval '1 day'", "'2099-01-01'", "'infinity'", "'-infinity'"],
    ids=["tomorrow", "2099", "infinity", "-infinity"],
)
def test_an_event_from_the_future_or_infinity_is_rejected(app, conn, when):
    with pytest.raises(psycopg.errors.CheckViolation, match="occurred_at"):
        app.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
            f" VALUES (1, 1, 'click', {when})"
        )
    assert conn.execute("SELECT count(*) FROM recdb.events").fetchone()[0] == 0


def test_clock_skew_within_the_tolerance_is_accepted(app, conn):
    app.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
        " VALUES (1, 1, 'click', now() + interval '1 minute')"
    )
    conn.execute("UPDATE recdb.settings SET max_future_skew = interval '0'")
    with pytest.raises(psycopg.errors.CheckViolation, match="max_future_skew"):
        app.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
            " VALUES (1, 1, 'click', now() + interval '1 minute')"
        )


def test_a_stored_future_event_does_not_collapse_everyones_popularity(conn):
    """Rows written before the bound (or by the owner with triggers off) cannot make the
    popularity reference jump into the future: it never passes now()."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(3)])
    add_events(conn, 1, [0, 0, 1])
    conn.execute("SELECT recdb.refresh_popularity()")
    before = dict(conn.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())
    conn.execute("SET session_replication_role = replica")  # owner bypassing the triggers
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
        " VALUES (2, 2, 'view', '2099-01-01')"
    )
    conn.execute("RESET session_replication_role")
    conn.execute("SELECT recdb.refresh_popularity()")
    after = dict(conn.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())
    assert after[0] == pytest.approx(before[0], rel=1e-3)
    assert after[1] == pytest.approx(before[1], rel=1e-3)
    assert len(rerank(conn, 3, k=3)) == 3
