"""Bad rows are rejected with their reason and position, the good ones load, and the
import never aborts: the checks accept exactly what recdb.events itself accepts."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from recdb.db.sqlfiles import sql_dir
from recdb.importer import ImportSpec, import_file
from recdb.importer.reasons import REASONS
from tests.importer.files import count, events, items

T = "2024-03-01T10:00:00Z"
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
# (line in the file, CSV row, reason or None); line 1 is the header.
EVENT_ROWS = [
    (2, "7,1,click,,2024-03-01T10:00:00Z", None),
    (3, "7,1,clik,,2024-03-01T10:00:00Z", "bad_kind"),
    (4, "7,999,click,,2024-03-01T10:00:00Z", "unknown_item"),
    (5, "7,2,rate,9,2024-03-01T10:00:00Z", "value_out_of_range"),
    (6, "7,2,rate,5,2024-03-01T10:00:00Z", None),  # the range's ends are in it
    (7, "7,3,rate,1,2024-03-01T10:00:00Z", None),
    (8, "7,2,click,,2024-13-45 10:00", "bad_time"),
    (9, ",2,click,,2024-03-01T10:00:00Z", "missing_id"),
    (10, "u8,2,click,,2024-03-01T10:00:00Z", "bad_id"),
    (11, "8,2,rate,,2024-03-01T10:00:00Z", "missing_value"),
    (12, "8,2,rate,abc,2024-03-01T10:00:00Z", "bad_value"),
    (13, f"8,2,view,,{FUTURE}", "future_time"),
    (14, "8,2,view,,infinity", "bad_time"),
    (15, "8,2,view,,", "missing_time"),
    (16, "8,2,view", "bad_record"),
    (17, "8,3,like,,2024-03-01T11:00:00Z", None),
]
HEADER = "user_id,item_id,kind,value,occurred_at"


def _catalog(conn) -> None:
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')")


def _write(path, header: str, rows: list[str]):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("rejects_name", ["rejects.csv", "rejects.jsonl"])
def test_bad_events_are_reported_by_reason_and_the_good_ones_load(conn, tmp_path, rejects_name):
    _catalog(conn)
    path = _write(tmp_path / "events.csv", HEADER, [r for _, r, _ in EVENT_ROWS])
    rejects = tmp_path / rejects_name
    s = import_file(conn, path, ImportSpec("events"), chunk_size=5, rejects=rejects)

    bad = [(line, reason) for line, _, reason in EVENT_ROWS if reason]
    assert s.rows == len(EVENT_ROWS) and s.chunks == 4
    assert s.loaded == len(EVENT_ROWS) - len(bad) == count(conn, "events") == 4
    assert dict(s.rejected) == {r: sum(1 for _, x in bad if x == r) for _, r in bad}
    assert events(conn) == [
        (7, 1, "click", None, datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (7, 2, "rate", 5.0, datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (7, 3, "rate", 1.0, datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (8, 3, "like", None, datetime(2024, 3, 1, 11, tzinfo=UTC)),
    ]
    # the first examples, with their line and the offending value
    assert s.examples["bad_kind"] == ["line 3: kind='clik'"]
    assert s.examples["unknown_item"] == ["line 4: item_id='999'"]
    assert s.examples["bad_time"] == [
        "line 8: occurred_at='2024-13-45 10:00'",
        "line 14: occurred_at='infinity'",
    ]
    assert s.examples["bad_record"] == ["line 16: '8,2,view'"]
    text = s.render()
    assert "value_out_of_range" in text and "line 5: kind='rate', value='9'" in text
    ledger = conn.execute("SELECT sum(loaded), sum(row_count) FROM recdb.imports").fetchone()
    assert ledger == (4, len(EVENT_ROWS))

    if rejects.suffix == ".csv":
        with rejects.open(newline="") as f:
            written = list(csv.DictReader(f))
    else:
        written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(int(w["_line"]), w["_reason"]) for w in written] == bad
    by_line = {int(w["_line"]): w for w in written}
    assert by_line[3]["kind"] == "clik" and by_line[3]["user_id"] == "7"  # the row as read
    assert by_line[16]["_raw"] == "8,2,view"

    # fixed, the rejects file imports like the original (its own columns are ignored)
    rejects.write_text(rejects.read_text().replace("clik", "click"))
    fixed = import_file(conn, rejects, ImportSpec("events"))
    assert fixed.loaded == 1 and fixed.rejected_total == len(bad) - 1
    assert events(conn)[-1][:3] == (7, 1, "click")


def test_bad_items_are_reported_and_lines_count_multiline_fields(conn, tmp_path):
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (9, 'kept')")
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title,body,attrs,available\n"
        '1,One,"two\nlines",{},true\n'  # lines 2-3
        ",No id,,,\n"  # 4
        "x1,Bad id,,,\n"  # 5
        "2,,,,\n"  # 6: a new item without a title
        "3,Three,,not json,\n"  # 7
        '4,Four,,"[1, 2]",\n'  # 8: JSON, not an object
        "5,Five,,,maybe\n"  # 9
        "6,Six,nul\x00byte,,\n"  # 10
        "9,,,,false\n"  # 11: the file maps title, so an empty one is missing
        "7,Seven,,,no\n"  # 12
    )
    s = import_file(conn, path, ImportSpec("items"), rejects=tmp_path / "r.jsonl")
    assert dict(s.rejected) == {
        "missing_id": 1,
        "bad_id": 1,
        "missing_title": 2,
        "bad_attrs": 2,
        "bad_available": 1,
        "bad_text": 1,
    }
    assert (s.loaded, s.inserted) == (2, 2)
    assert items(conn) == {
        1: ("One", "two\nlines", {}, True),
        7: ("Seven", None, {}, False),
        9: ("kept", None, {}, True),
    }
    assert s.examples["missing_id"] == ["line 4: item_id=None"]
    assert s.examples["missing_title"] == ["line 6: item_id='2'", "line 11: item_id='9'"]
    assert s.examples["bad_attrs"] == [
        "line 7: item_id='3', attrs='not json'",
        ("line 8: item_id='4', attrs='[1, 2]'"),
    ]
    assert s.examples["bad_text"] == ["line 10"]


def _accepted_by_insert(conn, row: tuple) -> bool:
    """Would the app's own INSERT of these literals be accepted (constraints, trigger)?"""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                row,
            )
        return True
    except psycopg.DatabaseError:
        return False


def test_the_checks_accept_exactly_what_an_insert_accepts(conn, tmp_path):
    _catalog(conn)
    now = datetime.now(UTC)
    ok_time = "2024-03-01 10:00:00+00"
    cases = [
        (user, item, kind, value, time)
        for user, item in [("1", "1"), ("-3", "2"), ("1", "999"), ("1", "1.5"), ("", "1"),
                           ("9223372036854775808", "1"), (" 4 ", "3")]
        for kind, value in [("click", ""), ("rate", "3")]
        for time in [ok_time]
    ] + [
        ("1", "1", kind, value, ok_time)
        for kind in ["rate", "click", "CLICK", "", "nope"]
        for value in ["", "0.99", "1", "5", "5.01", "NaN", "Infinity", "-Infinity", "1e50",
                      "abc", " 3 ", "-0"]
    ] + [
        ("1", "1", "view", "", time)
        for time in ["infinity", "-infinity", "2024-02-30", "", "2024-01-01T00:00:00Z",
                     "Jan 2 2024 10:00 PST", (now + timedelta(minutes=3)).isoformat(),
                     (now + timedelta(minutes=8)).isoformat(), "epoch", "tomorrow"]
    ]  # fmt: skip
    path = tmp_path / "edges.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "kind", "value", "occurred_at"])
        w.writerows(cases)
    s = import_file(conn, path, ImportSpec("events"), rejects=tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(newline="") as f:
        refused = {int(r["_row"]) for r in csv.DictReader(f)}
    imported = {i + 1 for i in range(len(cases))} - refused
    by_insert = {
        i + 1
        for i, case in enumerate(cases)
        if _accepted_by_insert(conn, tuple(v if v != "" else None for v in case))
    }
    assert imported == by_insert
    assert 0 < s.loaded < len(cases)


def test_every_reason_the_checks_give_is_described():
    given = set(re.findall(r"THEN '(\w+)'", (sql_dir() / "queries/import.sql").read_text()))
    assert given | {"bad_record", "bad_text"} == set(REASONS)
