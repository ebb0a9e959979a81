"""Bad writes get a clear error and leave what is stored unchanged."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.helpers import add_events, add_items, axis


@pytest.fixture
def stored(conn):
    add_items(conn, [{"item_id": 1, "embedding": axis(0)}, {"item_id": 2, "embedding": axis(1)}])
    add_events(conn, 10, [1], "click")
    return conn


def _snapshot(conn):
    return (
        conn.execute(
            "SELECT item_id, title, embedding::text FROM recdb.items ORDER BY 1"
        ).fetchall(),
        conn.execute(
            "SELECT user_id, item_id, kind, value FROM recdb.events ORDER BY event_id"
        ).fetchall(),
    )


@pytest.mark.parametrize(
    ("statement", "params", "message"),
    [
        (
            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'teleport')",
            None,
            r'Key \(kind\)=\(teleport\) is not present in table "event_kinds"',
        ),
        (
            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 99, 'click')",
            None,
            r'Key \(item_id\)=\(99\) is not present in table "items"',
        ),
        (
            "INSERT INTO recdb.events (user_id, item_id, kind, value) VALUES (1, 1, 'rate', 6)",
            None,
            r'value 6 is invalid for kind "rate" \(expected a number in \[1, 5\]\)',
        ),
        (
            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'rate')",
            None,
            r'value NULL is invalid for kind "rate"',
        ),
        (
            "INSERT INTO recdb.events (user_id, item_id, kind, value)"
            " VALUES (1, 1, 'click', 'NaN')",
            None,
            "events_value_finite",
        ),
        (
            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (NULL, 1, 'click')",
            None,
            'null value in column "user_id"',
        ),
        (
            "UPDATE recdb.items SET embedding = %s WHERE item_id = 1",
            (np.ones(3, dtype=np.float32),),
            "expected 32 dimensions, not 3",
        ),
        (
            "UPDATE recdb.items SET embedding = '[NaN,1]' WHERE item_id = 1",
            None,
            "NaN not allowed in vector",
        ),
        ("UPDATE recdb.items SET attrs = '[1]' WHERE item_id = 1", None, "items_attrs_is_object"),
        (
            "INSERT INTO recdb.items (item_id, title) VALUES (1, 'duplicate')",
            None,
            r"Key \(item_id\)=\(1\) already exists",
        ),
        (
            "INSERT INTO recdb.items (item_id, title) VALUES (3, NULL)",
            None,
            'null value in column "title"',
        ),
    ],
)
def test_bad_write_is_rejected_and_changes_nothing(stored, statement, params, message):
    before = _snapshot(stored)
    with pytest.raises(psycopg.Error, match=message):
        stored.execute(statement, params)
    assert _snapshot(stored) == before


def test_bulk_event_insert_with_one_bad_rating_is_rejected_whole(stored):
    before = _snapshot(stored)
    with pytest.raises(psycopg.errors.CheckViolation, match="rate"):
        stored.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, value)"
            " SELECT 2, 1, 'rate', v FROM unnest(ARRAY[1, 3, 5, 7]::real[]) v"
        )
    assert _snapshot(stored) == before


def test_large_body_stored_intact(stored):
    body = "x" * 1_000_000
    add_items(stored, [{"item_id": 3, "title": "big", "body": body}])
    assert (
        stored.execute("SELECT length(body) FROM recdb.items WHERE item_id = 3").fetchone()[0]
        == 1_000_000
    )
