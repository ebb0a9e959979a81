"""sql/functions/: the one current definition of every recdb function (revision 0004)."""

from __future__ import annotations

import re

import psycopg
import pytest

from recdb.db.revision_sql import FUNCTIONS, function_files, functions_folder
from recdb.db.sqlfiles import sql_dir
from tests.support import REPO_ROOT
from tests.support.builders import add_events, add_items, axis, rerank, set_user_vector
from tests.support.database import TEST_DIM
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


def _model_row(conn) -> int:
    """A registry row (the switch reads its fold operator, never its blob)."""
    return conn.execute(
        "INSERT INTO recdb.models (config, metrics, text_dim, dim, trained_through, blob, sha256)"
        " VALUES ('{}', '{}', %s, %s, 0, '\\x00'::bytea, sha256('\\x00'::bytea))"
        " RETURNING model_id",
        (TEST_DIM, TEST_DIM),
    ).fetchone()[0]


def _searched(conn) -> dict[int, tuple[int, list[float]]]:
    """What rerank() searches: item -> (space, vector), every attached partition."""
    rows = conn.execute("SELECT item_id, space, embedding::text FROM recdb.item_vectors")
    return {r[0]: (r[1], r[2]) for r in rows}


def test_activation_switches_every_staged_item_at_once_and_requeues_the_changed(conn):
    """The staged model's vectors become the served ones in one transaction: items.embedding
    and the searched partition agree, an item whose text changed while the model was
    staged (or that is newer than the staging) is cleared and re-queued instead of keeping
    the old model's vector, every user vector is reset and queued, the old partition goes."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(1, 5)])
    conn.execute("UPDATE recdb.items SET text_embedding = embedding, text_key = 'k' || item_id")
    add_events(conn, 7, [1, 2])
    set_user_vector(conn, 7, axis(1))
    conn.execute("DELETE FROM recdb.item_queue")
    assert {i: s for i, (s, _) in _searched(conn).items()} == {1: 0, 2: 0, 3: 0, 4: 0}
    model = _model_row(conn)
    conn.execute(
        "INSERT INTO recdb.staged_items (space, item_id, text_key, embedding, next)"
        " SELECT %s, item_id, text_key, embedding, embedding FROM recdb.items",
        (model,),
    )
    conn.execute(
        "UPDATE recdb.staged_items SET embedding = %s WHERE item_id IN (1, 2, 3)", (axis(9),)
    )
    assert conn.execute("SELECT recdb.build_vector_space(%s)", (model,)).fetchone()[0] == 4
    # while staged: nothing served changed; then item 4's text changes, item 5 arrives
    assert {i: s for i, (s, _) in _searched(conn).items()} == {1: 0, 2: 0, 3: 0, 4: 0}
    conn.execute("UPDATE recdb.items SET text_key = 'k4 new' WHERE item_id = 4")
    add_items(conn, [{"item_id": 5, "embedding": axis(5)}])
    conn.execute("DELETE FROM recdb.item_queue")

    assert conn.execute("SELECT recdb.activate_model(%s)", (model,)).fetchone()[0] == 2
    served = conn.execute(
        "SELECT item_id, embedding::text, encoder FROM recdb.items ORDER BY 1"
    ).fetchall()
    assert [(r[0], r[2]) for r in served] == [
        (1, f"sequence:{model}"), (2, f"sequence:{model}"), (3, f"sequence:{model}"),
        (4, None), (5, None),
    ]  # fmt: skip
    searched = _searched(conn)
    assert sorted(searched) == [1, 2, 3] and {s for s, _ in searched.values()} == {model}
    assert all(searched[r[0]][1] == r[1] for r in served[:3])
    staged = "SELECT count(*) FROM recdb.items WHERE embedding = %s"
    assert conn.execute(staged, (axis(9),)).fetchone()[0] == 3
    assert conn.execute("SELECT item_id FROM recdb.item_queue ORDER BY 1").fetchall() == [
        (4,),
        (5,),
    ]
    assert conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE model_id = %s) FROM recdb.item_next", (model,)
    ).fetchone() == (3, 3)
    assert conn.execute(
        "SELECT embedding IS NULL, encoded_through FROM recdb.users WHERE user_id = 7"
    ).fetchone() == (True, 0)
    assert conn.execute("SELECT count(*) FROM recdb.user_queue WHERE user_id = 7").fetchone()[0]
    assert conn.execute("SELECT to_regclass('recdb.item_vectors_0')").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM recdb.staged_items").fetchone()[0] == 0
    # rerank() folds user 7's events in the new space at once (no stored vector of the old)
    assert rerank(conn, 7, k=2)[0][5] == 2

    # back to text vectors: built from the stored text vectors, in SQL
    assert conn.execute("SELECT recdb.activate_model(NULL)").fetchone()[0] == 0
    assert (
        conn.execute(
            "SELECT count(*) FROM recdb.items WHERE embedding IS DISTINCT FROM text_embedding"
            " AND text_embedding IS NOT NULL"
        ).fetchone()[0]
        == 0
    )
    assert sorted(_searched(conn)) == [1, 2, 3, 4]
    assert conn.execute("SELECT count(*) FROM recdb.item_next").fetchone()[0] == 0


def test_activating_a_model_that_is_not_staged_says_how(conn):
    model = _model_row(conn)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="recdb activate"):
        conn.execute("SELECT recdb.activate_model(%s)", (model,))
    with pytest.raises(psycopg.errors.NoDataFound, match="no model with model_id"):
        conn.execute("SELECT recdb.activate_model(999999)")


def test_every_writer_of_items_embedding_keeps_the_searched_copy(conn):
    """The owner's UPDATE, a COPY, clearing, deleting, the app's availability and attribute
    changes: item_vectors follows items (what rerank()'s search filters on included)."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(1, 4)])
    conn.execute("UPDATE recdb.items SET available = false, attrs = '{\"c\": 1}' WHERE item_id = 2")
    conn.execute("UPDATE recdb.items SET embedding = %s WHERE item_id = 2", (axis(7),))
    conn.execute("UPDATE recdb.items SET embedding = NULL WHERE item_id = 3")
    conn.execute("DELETE FROM recdb.item_queue")
    conn.execute("DELETE FROM recdb.items WHERE item_id = 1")
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY recdb.items (item_id, title, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int8", "text", "vector"])
        copy.write_row((8, "copied", axis(8)))
    got = _searched(conn)
    want = conn.execute(
        "SELECT item_id, embedding::text FROM recdb.items WHERE embedding IS NOT NULL"
    ).fetchall()
    assert {i: v for i, (_, v) in got.items()} == dict(want)
    assert sorted(got) == [2, 8]
    filters = "SELECT item_id, available, attrs FROM recdb.{} WHERE item_id IN (2, 8) ORDER BY 1"
    assert (
        conn.execute(filters.format("item_vectors")).fetchall()
        == conn.execute(filters.format("items")).fetchall()
        == [(2, False, {"c": 1}), (8, True, {})]
    )


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


def test_rebuild_item_vectors_rebuilds_the_served_space_in_bulk(conn):
    """After a load with the index dropped, or to compact it: same rows, a fresh index."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(1, 6)])
    before = _searched(conn)
    old = conn.execute("SELECT 'recdb.item_vectors_0'::regclass::oid").fetchone()[0]
    assert conn.execute("SELECT recdb.rebuild_item_vectors()").fetchone()[0] == 5
    assert _searched(conn) == before
    assert conn.execute("SELECT 'recdb.item_vectors_0'::regclass::oid").fetchone()[0] != old
    assert conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'recdb.item_vectors_0_hnsw'::regclass"
    ).fetchone()[0]
    assert conn.execute("SELECT count(*) FROM recdb.staged_items").fetchone()[0] == 0
    got = conn.execute("SELECT item_id FROM similar_items(1, 4)").fetchall()
    assert sorted(got) == [(2,), (3,), (4,), (5,)]  # searched through the new partition
