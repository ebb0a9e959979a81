"""sql/functions/: the one current definition of every recdb function (revision 0004)."""

from __future__ import annotations

import re

import psycopg
import pytest

from recdb.db.revision_sql import FUNCTIONS, function_files, functions_folder
from recdb.db.sqlfiles import sql_dir
from tests.support import REPO_ROOT
from tests.support.builders import add_events, add_items, axis, rerank, set_user_vector
from tests.support.roles import connect_as, login_role


def _sources() -> dict[str, str]:
    return {name: (sql_dir() / FUNCTIONS / name).read_text() for name in function_files()}


def test_files_are_layered_by_name_and_idempotent_statements_only():
    names = function_files()
    assert names, "sql/functions/ is empty"
    assert all(re.fullmatch(r"\d{3}_[a-z_]+\.sql", n) for n in names), names
    assert len({n[:3] for n in names}) == len(names), f"two files share a position: {names}"
    for name, text in _sources().items():
        plain = re.findall(r"^CREATE\b(?!\s+OR\s+REPLACE\b).*$", text, flags=re.M | re.I)
        assert not plain, f"{name}: not re-runnable (use CREATE OR REPLACE): {plain}"


def test_every_function_and_trigger_is_defined_once_in_sql_functions(conn):
    defined: dict[str, list[str]] = {}
    for name, text in _sources().items():
        for kind, obj in re.findall(
            r"^CREATE OR REPLACE (FUNCTION|TRIGGER) ([\w.]+)", text, flags=re.M
        ):
            defined.setdefault(f"{kind.lower()} {obj}", []).append(name)
    twice = {obj: files for obj, files in defined.items() if len(files) > 1}
    assert not twice, f"defined more than once: {twice}"
    in_db = {
        f"function {r[0]}"
        for r in conn.execute(
            "SELECT pronamespace::regnamespace || '.' || proname FROM pg_proc"
            " WHERE pronamespace = 'recdb'::regnamespace"
            "    OR (pronamespace = 'public'::regnamespace"
            "        AND proname IN ('rerank', 'similar_items'))"
        )
    } | {
        f"trigger {r[0]}"
        for r in conn.execute(
            "SELECT tgname FROM pg_trigger"
            " WHERE tgrelid::regclass::text LIKE 'recdb.%' AND NOT tgisinternal"
        )
    }
    assert in_db == set(defined)


@pytest.fixture
def app(conn, db_url):
    c = connect_as(db_url, login_role(conn, "recdb_app"))
    yield c
    c.close()


def test_app_queues_items_through_the_trigger_but_cannot_call_enqueue_items(app, conn):
    app.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'a'), (2, 'b')")
    conn.execute("UPDATE recdb.item_queue SET attempts = 3, parked_at = now(), last_error = 'x'")
    app.execute("UPDATE recdb.items SET title = 'a2' WHERE item_id = 1")
    rows = conn.execute(
        "SELECT item_id, changes, attempts, parked_at IS NULL, last_error FROM recdb.item_queue"
        " ORDER BY 1"
    ).fetchall()
    assert rows == [(1, 2, 0, True, None), (2, 1, 3, False, "x")]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT recdb.enqueue_items(ARRAY[2]::bigint[])")


def test_worker_role_may_requeue_items_through_enqueue_items(conn, db_url):
    add_items(conn, [{"item_id": 1}])
    conn.execute("DELETE FROM recdb.item_queue")
    worker = connect_as(db_url, login_role(conn, "recdb_worker"))
    try:
        got = worker.execute("SELECT recdb.enqueue_items(ARRAY(SELECT item_id FROM recdb.items))")
        assert got.fetchone()[0] == 1
    finally:
        worker.close()


def test_enqueue_items_skips_nulls_and_duplicates_and_counts_rows(conn):
    assert (
        conn.execute("SELECT recdb.enqueue_items(ARRAY[3, NULL, 3, 1]::bigint[])").fetchone()[0]
        == 2
    )
    assert conn.execute("SELECT recdb.enqueue_items('{}')").fetchone()[0] == 0
    assert conn.execute("SELECT item_id, changes FROM recdb.item_queue ORDER BY 1").fetchall() == [
        (1, 1),
        (3, 1),
    ]


def test_activate_model_requeues_every_item(conn):
    add_items(conn, [{"item_id": i} for i in range(1, 4)])
    conn.execute("DELETE FROM recdb.item_queue WHERE item_id = 2")
    conn.execute("UPDATE recdb.item_queue SET parked_at = now() WHERE item_id = 3")
    assert conn.execute("SELECT recdb.activate_model(NULL)").fetchone()[0] == 3
    rows = conn.execute(
        "SELECT item_id, changes, parked_at IS NULL FROM recdb.item_queue ORDER BY 1"
    ).fetchall()
    assert rows == [(1, 2, True), (2, 1, True), (3, 2, True)]


def test_recent_positive_items_newest_first_with_liked_flag(conn):
    add_items(conn, [{"item_id": i} for i in range(1, 7)])
    add_events(conn, 1, [1], "click")
    add_events(conn, 1, [2], "dislike")  # a negative kind: never positive
    add_events(conn, 1, [3], "rate", 5)
    add_events(conn, 1, [4], "rate", 2)  # at value_center: positive, not liked
    add_events(conn, 1, [5], "skip")
    add_events(conn, 1, [6], "rate", 1)
    add_events(conn, 2, [1], "like")
    got = conn.execute("SELECT * FROM recdb.recent_positive_items(1, 10)").fetchall()
    assert got == [(6, False), (4, False), (3, True), (1, True)]
    assert conn.execute("SELECT * FROM recdb.recent_positive_items(1, 2)").fetchall() == [
        (6, False),
        (4, False),
    ]


def test_low_ratings_vote_for_covisitation_but_never_explain(conn):
    """Co-visitation counts what users consumed; an explanation cites only what they liked."""
    topic0 = [{"item_id": 100 + j, "embedding": axis(0, noise=0.2, seed=j)} for j in range(10)]
    topic0[2]["embedding"] = topic0[0]["embedding"]  # item 102 looks exactly like item 100
    add_items(conn, [*topic0, {"item_id": 200, "title": "other topic", "embedding": axis(1)}])
    for u in range(10, 15):
        add_events(conn, u, [100], "rate", 1)
        add_events(conn, u, [200], "purchase")
    assert conn.execute("SELECT recdb.refresh_neighbors()").fetchone()[0] > 0
    add_events(conn, 1, [100], "rate", 1)
    add_events(conn, 1, [101], "rate", 5)
    set_user_vector(conn, 1, axis(0))
    rows = rerank(conn, 1, k=10)
    assert rows[0][1] == 200  # voted up by the 1-star rating of item 100 (cosine alone: 0)
    assert 102 in [r[1] for r in rows]
    assert {r[3] for r in rows} == {101}  # explained by the liked item, never by item 100


def test_only_the_newest_function_revision_uses_the_current_files():
    """An older revision applies its frozen copy (sql/v000N/functions/): today's files may
    use columns that do not exist at that revision yet."""
    callers = sorted(
        {
            rev
            for path in (REPO_ROOT / "migrations/versions").glob("*.py")
            for rev in re.findall(r'apply_functions\("(\d+)"\)', path.read_text())
        }
    )
    assert callers, "no revision applies sql/functions/"
    assert functions_folder(callers[-1]) == FUNCTIONS
    unfrozen = [rev for rev in callers[:-1] if functions_folder(rev) == FUNCTIONS]
    assert not unfrozen, (
        f"revisions {unfrozen} would apply the current sql/functions/: copy the folder as it"
        " was at their release to sql/v<revision>/functions/ before changing it"
    )
