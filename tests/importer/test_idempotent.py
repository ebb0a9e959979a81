"""Re-running an import loads nothing twice; a changed catalogue re-queues only the items
that changed; a file writes only the columns it has."""

from __future__ import annotations

import shutil

from recdb.importer import ImportSpec, import_file
from tests.importer.files import count, events, items, queued_items, queued_users, write

CATALOG = [
    {"item_id": 1, "title": "One", "body": "first"},
    {"item_id": 2, "title": "Two", "body": "second"},
    {"item_id": 3, "title": "Three", "body": "third"},
]
LOG = [
    {"user_id": u, "item_id": i, "kind": "click", "occurred_at": f"2024-01-0{i} 10:00"}
    for u in (7, 8)
    for i in (1, 2, 3)
] + [{"user_id": 9, "item_id": 4, "kind": "click", "occurred_at": "2024-01-01"}]  # rejected


def _drain(conn) -> None:
    conn.execute("DELETE FROM recdb.item_queue")
    conn.execute("DELETE FROM recdb.user_queue")


def test_a_second_run_loads_nothing_and_queues_nothing(conn, tmp_path):
    catalog = write(tmp_path / "catalog.csv", CATALOG)
    log = write(tmp_path / "log.jsonl", LOG)
    import_file(conn, catalog, ImportSpec("items"), chunk_size=2)
    first = import_file(conn, log, ImportSpec("events"), chunk_size=4)
    assert (first.loaded, first.rejected_total) == (6, 1)
    assert queued_users(conn) == {7, 8}  # the users of loaded events, not user 9
    before = (events(conn), items(conn), count(conn, "imports"))
    _drain(conn)

    again = import_file(conn, catalog, ImportSpec("items"), chunk_size=2)
    assert (again.rows, again.loaded, again.skipped, again.chunks) == (0, 0, 3, 0)
    # a renamed copy is the same file; another chunk size resumes at the same row
    shutil.copy(log, tmp_path / "copy.jsonl")
    again = import_file(conn, tmp_path / "copy.jsonl", ImportSpec("events"), chunk_size=3)
    assert (again.rows, again.loaded, again.skipped) == (0, 0, 7)
    assert "skipped   7 rows already imported" in again.render()

    assert (events(conn), items(conn), count(conn, "imports")) == before
    assert queued_users(conn) == set() and queued_items(conn) == set()


def test_an_updated_catalogue_requeues_only_the_items_that_changed(conn, tmp_path):
    import_file(conn, write(tmp_path / "v1.csv", CATALOG), ImportSpec("items"))
    _drain(conn)
    v2 = [dict(r) for r in CATALOG] + [{"item_id": 4, "title": "Four", "body": "new"}]
    v2[1]["title"] = "Two, renamed"
    s = import_file(conn, write(tmp_path / "v2.csv", v2), ImportSpec("items"))
    assert (s.loaded, s.inserted, s.updated) == (4, 1, 1)
    assert queued_items(conn) == {2, 4}
    assert items(conn)[2][0] == "Two, renamed"


def test_a_file_writes_only_the_columns_it_has(conn, tmp_path):
    conn.execute(
        "INSERT INTO recdb.items (item_id, title, body, attrs) VALUES"
        " (1, 'One', 'first', '{\"a\": 1}'), (2, 'Two', 'second', '{}')"
    )
    _drain(conn)
    stock = [{"sku": 1, "in_stock": "false"}, {"sku": 2, "in_stock": "true"}, {"sku": 5}]
    spec = ImportSpec("items", mapping={"item_id": "sku", "available": "in_stock"})
    s = import_file(conn, write(tmp_path / "stock.jsonl", stock), spec)
    assert (s.loaded, s.updated, dict(s.rejected)) == (2, 1, {"missing_title": 1})  # 5 is new
    assert items(conn) == {
        1: ("One", "first", {"a": 1}, False),
        2: ("Two", "second", {}, True),
    }
    assert queued_items(conn) == set()  # availability is not content: nothing to re-encode


def test_the_last_row_for_an_item_wins(conn, tmp_path):
    rows = [{"item_id": 1, "title": "draft"}, {"item_id": 2, "title": "B"}]
    rows += [{"item_id": 1, "title": "final"}, {"item_id": 1, "title": "really final"}]
    s = import_file(conn, write(tmp_path / "dupes.csv", rows), ImportSpec("items"), chunk_size=3)
    assert (s.loaded, s.inserted, s.updated) == (4, 2, 1)  # chunk 1: 1 and 2; chunk 2: 1 again
    assert {k: v[0] for k, v in items(conn).items()} == {1: "really final", 2: "B"}
