"""`recdb load movielens` on a small GroupLens-format slice: counts, attrs, timestamps,
idempotence (no duplicates, no re-queueing of unchanged items) and the CLI errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recdb import cli
from recdb.datasets.loader import load_movielens
from recdb.datasets.movielens import MovieLensNotFound


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


HORROR, SCIFI, DRAMA, COMEDY = 11, 15, 8, 5
MOVIES = [
    (1, "Toy Story (1995)", _flags(3, 4, COMEDY)),
    (2, "Alien (1979)", _flags(HORROR, SCIFI)),
    (3, "Heat (1995)", _flags(6, 16)),
    (4, "Fargo (1996)", _flags(6, DRAMA, 16)),
    (5, "unknown", _flags(0)),
]
# (user, item, rating, unix time); user 7 rated item 2 twice at different times.
RATINGS = [
    (7, 1, 4, 881250949), (7, 2, 5, 881250999), (7, 2, 3, 881350000),
    (8, 1, 1, 891717742), (8, 3, 2, 891717800), (8, 4, 5, 891717900),
    (9, 4, 3, 878887116), (9, 5, 1, 878887117),
]  # fmt: skip


def write_grouplens(d: Path, movies=MOVIES, ratings=RATINGS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "u.item").write_bytes(
        "".join(f"{i}|{t}|01-Jan-1995||http://x|{f}\n" for i, t, f in movies).encode("latin-1")
    )
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{ts}\n" for u, i, r, ts in ratings))
    return d


def count(conn, table: str) -> int:
    col = "DISTINCT user_id" if table == "user_queue" else "*"  # one row per user and statement
    return conn.execute(f"SELECT count({col}) FROM recdb.{table}").fetchone()[0]


def drain_queues(conn) -> None:
    """What a worker would leave behind: empty queues."""
    conn.execute("DELETE FROM recdb.item_queue")
    conn.execute("DELETE FROM recdb.user_queue")


def test_counts_attrs_and_timestamps(conn, tmp_path):
    d = write_grouplens(tmp_path / "ml-100k")
    c = load_movielens(conn, d, progress=False)
    assert c["items"] == c["items_inserted"] == 5
    assert c["events"] == c["events_inserted"] == 8
    assert (c["events_skipped"], c["events_unknown_item"], c["users"]) == (0, 0, 3)
    assert count(conn, "items") == 5 and count(conn, "events") == 8

    title, body, attrs = conn.execute(
        "SELECT title, body, attrs FROM recdb.items WHERE item_id = 2"
    ).fetchone()
    assert title == "Alien (1979)"
    assert attrs == {"genres": ["Horror", "Sci-Fi"], "year": 1979}
    assert "Horror" in body and "1979" in body
    assert conn.execute("SELECT attrs FROM recdb.items WHERE item_id = 5").fetchone()[0] == {
        "genres": [],
        "year": 1995,  # from the release date when the title has no (YYYY)
    }

    rows = conn.execute(
        "SELECT user_id, item_id, kind, value, occurred_at FROM recdb.events ORDER BY event_id"
    ).fetchall()
    assert {r[2] for r in rows} == {"rate"}
    expected = sorted(
        (datetime.fromtimestamp(ts, tz=UTC), u, i, float(r)) for u, i, r, ts in RATINGS
    )
    # event_id order is chronological, timestamps and values are the file's
    assert [(r[4], r[0], r[1], r[3]) for r in rows] == expected
    # popularity is ready for cold-start rankings right after the load
    assert count(conn, "item_popularity") > 0


def test_events_at_the_same_time_keep_the_file_order(conn, tmp_path):
    """Ties on time keep the order the file lists them in (event_id follows it): the
    histories `recdb train` learns from are then the sequences a chronological
    leave-one-out split with a stable sort (recdb eval) defines. Ordering ties by item id
    instead taught the model an "ascending id" pattern its targets do not follow."""
    ratings = [(7, 4, 3, 881250949), (7, 2, 5, 881250949), (7, 3, 4, 881250949),
               (7, 1, 2, 881250949), (8, 5, 1, 881250949), (7, 2, 1, 881250950)]  # fmt: skip
    load_movielens(conn, write_grouplens(tmp_path, ratings=ratings), progress=False)
    rows = conn.execute(
        "SELECT user_id, item_id FROM recdb.events ORDER BY occurred_at, event_id"
    ).fetchall()
    assert [(u, i) for u, i in rows] == [(u, i) for u, i, _, _ in ratings]


def test_second_load_changes_nothing_and_queues_nothing(conn, tmp_path):
    d = write_grouplens(tmp_path)
    first = load_movielens(conn, d, progress=False)
    assert count(conn, "item_queue") == 5 and count(conn, "user_queue") == 3
    drain_queues(conn)
    updated_at = conn.execute("SELECT max(updated_at) FROM recdb.items").fetchone()[0]

    again = load_movielens(conn, d, progress=False)
    assert (again["items_inserted"], again["items_updated"], again["items_unchanged"]) == (0, 0, 5)
    assert (again["events_inserted"], again["events_skipped"]) == (0, 8)
    assert count(conn, "items") == 5 and count(conn, "events") == first["events"]
    assert count(conn, "item_queue") == 0 and count(conn, "user_queue") == 0
    assert conn.execute("SELECT max(updated_at) FROM recdb.items").fetchone()[0] == updated_at


def test_changed_movie_and_new_ratings_are_merged(conn, tmp_path):
    load_movielens(conn, write_grouplens(tmp_path / "a"), progress=False)
    drain_queues(conn)
    movies = [(i, "Aliens (1986)" if i == 2 else t, f) for i, t, f in MOVIES]
    ratings = [*RATINGS, (10, 3, 4, 893000000), RATINGS[0]]  # a new one and a repeat
    c = load_movielens(conn, write_grouplens(tmp_path / "b", movies, ratings), progress=False)
    assert (c["items_inserted"], c["items_updated"], c["items_unchanged"]) == (0, 1, 4)
    assert (c["events_inserted"], c["events_skipped"]) == (1, 9)
    assert [r[0] for r in conn.execute("SELECT item_id FROM recdb.item_queue")] == [2]
    assert [r[0] for r in conn.execute("SELECT DISTINCT user_id FROM recdb.user_queue")] == [10]
    assert count(conn, "events") == 9


def test_ratings_on_unknown_items_are_counted_not_fatal(conn, tmp_path):
    d = write_grouplens(tmp_path, ratings=[*RATINGS, (7, 999, 4, 881250950)])
    c = load_movielens(conn, d, progress=False)
    assert (c["events_inserted"], c["events_unknown_item"]) == (8, 1)


def test_missing_data_is_a_clean_error(conn, tmp_path, capsys):
    with pytest.raises(MovieLensNotFound):
        load_movielens(conn, tmp_path / "nowhere", progress=False)
    assert cli.main(["load", "movielens", "--path", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "--path" in err and "Traceback" not in err


def test_cli_loads_and_reports(db_url, tmp_path, capsys):
    d = write_grouplens(tmp_path)
    assert cli.main(["load", "movielens", "--path", str(d), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5 new" in out and "8 new" in out
    assert cli.main(["load", "movielens", "--path", str(d), "--no-progress"]) == 0
    assert "5 unchanged" in capsys.readouterr().out


def test_unmigrated_database_says_what_to_do(empty_db_url, tmp_path):
    from recdb.db import connection

    with (
        connection(empty_db_url, autocommit=True) as c,
        pytest.raises(RuntimeError, match="db upgrade"),
    ):
        load_movielens(c, write_grouplens(tmp_path), progress=False)
