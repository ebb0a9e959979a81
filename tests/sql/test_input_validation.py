"""Bad writes get a clear error and leave what is stored unchanged."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.support.builders import add_events, add_items, axis


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


def test_infinite_vector_rejected(stored):
    before = _snapshot(stored)
    with pytest.raises(psycopg.Error, match="infinite value not allowed in vector"):
        stored.execute(
            "UPDATE recdb.items SET embedding = %s WHERE item_id = 1",
            (np.full(32, np.inf, dtype=np.float32),),
        )
    assert _snapshot(stored) == before


def test_nul_byte_in_title_is_a_clear_error(stored):
    before = _snapshot(stored)
    with pytest.raises(psycopg.DataError, match="NUL"):
        stored.execute("INSERT INTO recdb.items (item_id, title) VALUES (5, %s)", ("bad\x00title",))
    assert _snapshot(stored) == before


def test_control_characters_and_unicode_are_stored_intact(stored):
    title = "Zürich \u202eevil\u202c \x07bell\ttab 🎬 日本語"
    add_items(stored, [{"item_id": 6, "title": title}])
    assert stored.execute("SELECT title FROM recdb.items WHERE item_id = 6").fetchone()[0] == title


def test_bulk_load_with_duplicate_ids_fails_whole_and_names_the_key(stored):
    before = _snapshot(stored)
    with (
        pytest.raises(
            psycopg.errors.UniqueViolation, match=r"Key \(item_id\)=\(7\) already exists"
        ),
        stored.cursor() as cur,
        cur.copy("COPY recdb.items (item_id, title) FROM STDIN") as cp,
    ):
        for i, t in [(7, "a"), (8, "b"), (7, "c")]:
            cp.write_row((i, t))
    assert _snapshot(stored) == before
    # The documented way to load with duplicates: upsert, last one wins.
    stored.execute(
        "INSERT INTO recdb.items (item_id, title) SELECT DISTINCT ON (i) i, t"
        " FROM (VALUES (7, 'a', 1), (8, 'b', 2), (7, 'c', 3)) v(i, t, o) ORDER BY i, o DESC"
        " ON CONFLICT (item_id) DO UPDATE SET title = excluded.title"
    )
    rows = stored.execute(
        "SELECT item_id, title FROM recdb.items WHERE item_id IN (7, 8) ORDER BY 1"
    )
    assert rows.fetchall() == [(7, "c"), (8, "b")]
