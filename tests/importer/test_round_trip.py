"""CSV, JSONL and Parquet files of items and events land in recdb as they were in the
file: mapped columns, attrs, ids, values and times (with a zone, without one: UTC, Unix
seconds), one ledger row per chunk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recdb.importer import ImportSpec, import_file
from tests.importer.files import events, items, write

ITEM_MAP = {"item_id": "sku", "title": "name", "body": "description"}
EVENT_MAP = {
    "user_id": "customer",
    "item_id": "sku",
    "kind": "action",
    "value": "rating",
    "occurred_at": "ts",
}
CATALOG = [
    {"sku": 101, "name": "Red shoe", "description": "A red running shoe", "brand": "Acme",
     "color": "red"},
    {"sku": 102, "name": "Blue hat", "description": None, "brand": "Hatco", "color": "blue"},
    {"sku": 103, "name": 'Sock, "wool"', "description": "two\nlines\tand a \\", "brand": "Acme",
     "color": None},
]  # fmt: skip
EXPECTED_ITEMS = {
    101: ("Red shoe", "A red running shoe", {"brand": "Acme", "color": "red"}, True),
    102: ("Blue hat", None, {"brand": "Hatco", "color": "blue"}, True),
    103: ('Sock, "wool"', "two\nlines\tand a \\", {"brand": "Acme"}, True),  # no color: no key
}
T1 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
T3 = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
# The same three times as each format writes them: text with a zone, without one (UTC),
# Unix seconds; Parquet has a timestamp type.
TIMES = {
    "csv": ("2024-03-01T10:00:00+02:00", "2024-03-01 09:00:00", "1709290800"),
    "jsonl": ("2024-03-01T10:00:00+02:00", "2024-03-01 09:00:00", 1709290800),
    "parquet": (T1, T2, T3),
}


def clicks(fmt: str) -> list[dict]:
    t1, t2, t3 = TIMES[fmt]
    return [
        {"customer": 7, "sku": 101, "action": "click", "rating": None, "ts": t1},
        {"customer": 7, "sku": 102, "action": "rate", "rating": 4.5, "ts": t2},
        {"customer": 8, "sku": 103, "action": "purchase", "rating": None, "ts": t3},
    ]


EXPECTED_EVENTS = [
    (7, 101, "click", None, T1),
    (7, 102, "rate", 4.5, T2),
    (8, 103, "purchase", None, T3),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_items_and_events_round_trip(conn, tmp_path, fmt):
    catalog = write(tmp_path / f"catalog.{fmt}", CATALOG)
    log = write(tmp_path / f"clicks.{fmt}", clicks(fmt))

    s = import_file(
        conn, catalog, ImportSpec("items", mapping=ITEM_MAP, attrs=("brand", "color")), chunk_size=2
    )
    assert (s.rows, s.loaded, s.inserted, s.updated, s.chunks) == (3, 3, 3, 0, 2)
    assert not s.rejected
    assert items(conn) == EXPECTED_ITEMS

    s = import_file(conn, log, ImportSpec("events", mapping=EVENT_MAP))
    assert (s.rows, s.loaded, s.chunks) == (3, 3, 1) and not s.rejected
    assert events(conn) == EXPECTED_EVENTS

    ledger = conn.execute(
        "SELECT target, first_row, row_count, loaded, rejected FROM recdb.imports"
        " ORDER BY target DESC, first_row"
    ).fetchall()
    assert ledger == [
        ("items", 1, 2, 2, {}),
        ("items", 3, 1, 1, {}),
        ("events", 1, 3, 3, {}),
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_typed_formats_keep_attribute_types_and_read_an_attrs_object(conn, tmp_path, fmt):
    rows = [
        {"item_id": 1, "title": "Heat", "attrs": {"genre": ["Crime"], "year": 1995}},
        {"item_id": 2, "title": "Alien", "attrs": {"genre": ["Horror", "Sci-Fi"], "year": 1979}},
    ]
    import_file(conn, write(tmp_path / f"films.{fmt}", rows), ImportSpec("items"))
    assert {k: v[2] for k, v in items(conn).items()} == {r["item_id"]: r["attrs"] for r in rows}

    gathered = [{"item_id": 3, "title": "Fargo", "year": 1996, "genres": ["Crime", "Drama"]}]
    import_file(
        conn,
        write(tmp_path / f"more.{fmt}", gathered),
        ImportSpec("items", attrs=("year", "genres")),
    )
    assert items(conn)[3][2] == {"year": 1996, "genres": ["Crime", "Drama"]}


def test_csv_attrs_are_text_and_an_attrs_column_is_json(conn, tmp_path):
    rows = [{"item_id": 1, "title": "Heat", "year": 1995, "attrs": '{"year": 1995}'}]
    path = write(tmp_path / "films.csv", rows)
    import_file(conn, path, ImportSpec("items"))
    assert items(conn)[1][2] == {"year": 1995}
    import_file(conn, path, ImportSpec("items", attrs=("year",)))  # other spec: a new import
    assert items(conn)[1][2] == {"year": "1995"}


def test_tab_separated_latin1_without_kind_column_uses_the_default_kind(conn, tmp_path):
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (5, 'x')")
    path = tmp_path / "purchases.tsv"
    path.write_bytes("buyer\titem_id\twhen\tnote\n42\t5\t2024-01-02\tcaf\xe9\n".encode("latin-1"))
    spec = ImportSpec(
        "events",
        format="csv",
        mapping={"user_id": "buyer", "occurred_at": "when"},
        kind_default="purchase",
        delimiter="\t",
        encoding="latin-1",
    )
    s = import_file(conn, path, spec)
    assert s.loaded == 1
    assert events(conn) == [(42, 5, "purchase", None, datetime(2024, 1, 2, tzinfo=UTC))]


def test_events_without_a_time_column_happen_now(conn, tmp_path):
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (5, 'x')")
    path = write(tmp_path / "views.csv", [{"user_id": 1, "item_id": 5, "kind": "view"}])
    import_file(conn, path, ImportSpec("events"))
    ((_, _, _, _, at),) = events(conn)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_parquet_nanosecond_times_load_at_microsecond_precision(conn, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (5, 'x')")
    ns = 1_709_280_000_123_456_789  # pandas writes timestamp[ns]; datetime holds only us
    table = pa.table(
        {
            "user_id": pa.array([1], pa.int64()),
            "item_id": pa.array([5], pa.int64()),
            "kind": ["view"],
            "occurred_at": pa.array([ns], pa.timestamp("ns", "UTC")),
        }
    )
    pq.write_table(table, tmp_path / "views.parquet")
    import_file(conn, tmp_path / "views.parquet", ImportSpec("events"))
    assert events(conn)[0][4] == datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
