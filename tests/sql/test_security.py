"""Least privilege and a hostile search_path: what each role can and cannot do."""

from __future__ import annotations

import re

import psycopg
import pytest

from recdb.sequence import TrainConfig
from recdb.sequence.job import train_and_register
from recdb.worker import Worker, WorkerConfig
from tests.support.builders import add_events, add_items, axis, set_user_vector
from tests.support.roles import connect_as, login_role
from tests.support.tiny_model import tiny_text_encoder

# recdb's functions whose search_path is neither pinned nor bound at creation (SQL body)
UNPINNED = (
    "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'recdb'::regnamespace"
    " AND prokind = 'f' AND prosqlbody IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM unnest(proconfig) c"
    " WHERE c LIKE 'search_path=%%') ORDER BY 1"
)


@pytest.fixture
def app(conn, db_url):
    add_items(conn, [{"item_id": i, "title": f"item {i}", "embedding": axis(i)} for i in range(5)])
    c = connect_as(db_url, login_role(conn, "recdb_app"))
    yield c
    c.close()


def test_app_role_writes_items_and_events_and_ranks(app, conn):
    app.execute("INSERT INTO recdb.items (item_id, title) VALUES (10, 'new')")
    app.execute("UPDATE recdb.items SET title = 'renamed', available = false WHERE item_id = 10")
    app.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 2, 'click')")
    rows = app.execute("SELECT item_id FROM rerank(1, 3)").fetchall()
    assert len(rows) == 3 and (2,) not in rows
    assert app.execute("SELECT count(*) FROM similar_items(1, 2)").fetchone()[0] == 2
    # the triggers queued the work although the app cannot see the queues
    assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM recdb.item_queue WHERE item_id = 10").fetchone()[0] == 1
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE recdb.users SET embedding = NULL",
        "INSERT INTO recdb.users (user_id) VALUES (99)",
        "UPDATE recdb.items SET embedding = NULL WHERE item_id = 1",
        "SELECT * FROM recdb.item_queue",
        "SELECT * FROM recdb.user_queue",
        "DELETE FROM recdb.user_queue",
        "UPDATE recdb.event_kinds SET weight = 100",
        "UPDATE recdb.settings SET popularity_weight = 100",
        "DELETE FROM recdb.items",
        "SELECT recdb.refresh_popularity()",
        "UPDATE recdb.workers SET errors = 0",
        "SELECT model_id FROM recdb.models",
        "SELECT recdb.activate_model(NULL)",
        "UPDATE recdb.items SET text_embedding = NULL WHERE item_id = 1",
    ],
)
def test_app_role_cannot_touch_what_is_not_its_own(app, conn, statement):
    before = conn.execute("SELECT count(*), count(embedding) FROM recdb.items").fetchone()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)
    assert conn.execute("SELECT count(*), count(embedding) FROM recdb.items").fetchone() == before


def test_readonly_role_reads_but_cannot_write(conn, db_url):
    add_items(conn, [{"item_id": 1, "embedding": axis(1)}])
    ro = connect_as(db_url, login_role(conn, "recdb_readonly"))
    try:
        assert ro.execute("SELECT count(*) FROM rerank(5)").fetchone()[0] == 1
        assert ro.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'view')")
        # the registry's metadata (recdb status) but not the weights
        assert ro.execute("SELECT count(*) FROM recdb.models WHERE active").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("SELECT blob FROM recdb.models")
    finally:
        ro.close()


def test_worker_role_runs_the_worker(conn, db_url):
    add_items(conn, [{"item_id": i, "title": f"thing {i}"} for i in range(4)])
    add_events(conn, 3, [1, 2], "click")
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    info["user"] = login_role(conn, "recdb_worker")
    url = psycopg.conninfo.make_conninfo(**info)
    stats = Worker(
        WorkerConfig(database_url=url, device="cpu"), text_encoder=tiny_text_encoder()
    ).run(once=True)
    assert (stats.items_encoded, stats.users_encoded, stats.errors) == (4, 1, 0)
    assert (
        conn.execute("SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL").fetchone()[0]
        == 1
    )
    worker = connect_as(db_url, info["user"])
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.execute("UPDATE recdb.items SET title = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.execute("SELECT recdb.activate_model(NULL)")  # activation is the DBA's
    finally:
        worker.close()

    # the DBA trains and activates a model; the worker role serves it
    tiny = TrainConfig(epochs=2, max_len=4, hidden=8, layers=1, heads=2, device="cpu", threads=1)
    trained = train_and_register(db_url, tiny, progress=False)
    assert trained.activated
    stats = Worker(
        WorkerConfig(database_url=url, device="cpu"), text_encoder=tiny_text_encoder()
    ).run(once=True)
    # the items were switched by the activation itself; the user is the worker's
    assert (stats.items_encoded, stats.users_encoded, stats.errors) == (0, 1, 0)
    served = f"sequence:{trained.model_id}"
    assert conn.execute("SELECT DISTINCT encoder FROM recdb.users").fetchall() == [(served,)]
    assert conn.execute("SELECT DISTINCT encoder FROM recdb.items").fetchall() == [(served,)]


def test_hostile_search_path_cannot_change_rerank(app, conn):
    """Shadow now(), array_position, the bigint = operator and l2_normalize: no effect."""
    set_user_vector(conn, 1, axis(2))
    add_events(conn, 1, [3], "click")
    expected = app.execute("SELECT item_id, score, reason FROM rerank(1, 4)").fetchall()
    conn.execute("DROP SCHEMA IF EXISTS evil CASCADE")
    conn.execute("CREATE SCHEMA evil")
    conn.execute("GRANT USAGE ON SCHEMA evil TO PUBLIC")
    conn.execute(
        "CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql"
        " AS $$ SELECT '1970-01-01'::timestamptz $$"
    )
    conn.execute(
        "CREATE FUNCTION evil.array_position(anyarray, anyelement) RETURNS int"
        " LANGUAGE sql AS $$ SELECT 1 $$"
    )
    conn.execute(
        "CREATE FUNCTION evil.l2_normalize(vector) RETURNS vector LANGUAGE sql"
        " AS $$ SELECT NULL::vector $$"
    )
    conn.execute(
        "CREATE FUNCTION evil.always(bigint, bigint) RETURNS boolean LANGUAGE sql"
        " AS $$ SELECT true $$"
    )
    conn.execute(
        "CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.always)"
    )
    app.execute("SET search_path = evil, public, pg_catalog")
    assert app.execute("SELECT now()").fetchone()[0].year == 1970  # the shadowing works...
    got = app.execute("SELECT item_id, score, reason FROM rerank(1, 4)").fetchall()
    assert got == expected  # ...but not inside recdb
    got = app.execute("SELECT item_id, score, reason FROM recdb.rerank(1, 4)").fetchall()
    assert got == expected
    conn.execute("DROP SCHEMA evil CASCADE")


def test_security_definer_only_where_a_role_acts_beyond_its_table_rights(conn):
    """The enqueue triggers (writers queue work they cannot read), forget_user (the app
    erases without DELETE on users or queues) and apply_retention (the worker expires
    events without DELETE on them): nothing else runs with its owner's rights."""
    rows = conn.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'recdb'::regnamespace AND prosecdef"
        " ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("apply_retention",),
        ("events_changed",),
        ("forget_user",),
        ("items_changed",),
    ]
    unpinned = conn.execute(f"SELECT proname FROM ({UNPINNED}) u").fetchall()
    # the events trigger runs in every app INSERT: it names everything instead (below)
    assert unpinned == [("events_changed",)]


# What may stand before "(" unqualified in an unpinned function: SQL syntax, not names.
SYNTAX_BEFORE_PARENS = {
    *("least", "greatest", "coalesce", "nullif", "in", "exists", "values", "distinct"),
    *("when", "then", "else", "and", "or", "not", "on", "where", "select", "from", "if", "join"),
}


def _code_only(source: str) -> str:
    """plpgsql source without comments and string literals."""
    source = re.sub(r"--[^\n]*", " ", source)
    return re.sub(r"'(?:[^']|'')*'", "''", source)


def test_an_unpinned_function_names_nothing_unqualified(conn):
    """A function without a pinned search_path looks nothing up by name: every operator is
    OPERATOR(pg_catalog.op), every function and table carries its schema, no cast names a
    type. (A name the caller's search_path resolves would run the caller's code with the
    owner's rights inside a SECURITY DEFINER function.)"""
    rows = conn.execute(UNPINNED).fetchall()
    assert rows
    for name, source in rows:
        code = _code_only(source)
        code = re.sub(r"OPERATOR\(pg_catalog\.[^)\s]+\)", " ", code)
        code = code.replace(":=", " ")
        code = re.sub(r"(?<![\w.])-(?=\d)", " ", code)  # a negative literal, not an operator
        assert "::" not in code, f"{name}: a cast names a type"
        operators = re.findall(r"[-+*/<>=~!@#%^&|`?]+", code)
        assert operators == [], f"{name}: unqualified operators {operators}"
        called = re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", code)
        assert {c.lower() for c in called} <= SYNTAX_BEFORE_PARENS, f"{name}: calls {called}"


def test_hostile_search_path_cannot_hijack_the_events_trigger(app, conn):
    """The app role shadows every operator and function the events trigger uses (and its
    transition tables' names) with its own, logging who runs them: inserting, refusing
    and deleting events never runs any of them."""
    conn.execute("DROP SCHEMA IF EXISTS evil CASCADE")
    conn.execute("CREATE SCHEMA evil")
    conn.execute("GRANT USAGE ON SCHEMA evil TO PUBLIC")
    conn.execute("CREATE TABLE evil.log (who text)")
    conn.execute("GRANT INSERT, SELECT ON evil.log TO PUBLIC")

    def spy(signature: str, returns: str, result: str) -> None:
        conn.execute(
            f"CREATE FUNCTION evil.{signature} RETURNS {returns} LANGUAGE sql AS $$"
            f" INSERT INTO evil.log VALUES (current_user) RETURNING {result} $$"
        )

    spy("now()", "timestamptz", "pg_catalog.statement_timestamp()")
    spy("isfinite(timestamptz)", "boolean", "true")
    spy("pg_notify(text, text)", "void", "NULL::pg_catalog.void")
    spy("least(timestamptz, timestamptz)", "timestamptz", "$1")
    operators = {
        "text_eq": ("=", "text", "text", "boolean"),
        "text_ne": ("<>", "text", "text", "boolean"),
        "real_lt": ("<", "real", "real", "boolean"),
        "real_gt": (">", "real", "real", "boolean"),
        "ts_gt": (">", "timestamptz", "timestamptz", "boolean"),
        "ts_plus": ("+", "timestamptz", "interval", "timestamptz"),
    }
    for fn, (op, left, right, returns) in operators.items():
        spy(f"{fn}({left}, {right})", returns, f"$1 OPERATOR(pg_catalog.{op}) $2")
        conn.execute(
            f"CREATE OPERATOR evil.{op} (LEFTARG = {left}, RIGHTARG = {right},"
            f" FUNCTION = evil.{fn})"
        )
    spy("rows_seen()", "boolean", "true")
    for name in ("new_rows", "old_rows"):
        conn.execute(
            f"CREATE VIEW evil.{name} AS SELECT * FROM recdb.events WHERE evil.rows_seen()"
        )
    conn.execute("GRANT SELECT ON evil.new_rows, evil.old_rows TO PUBLIC")
    app.execute("SET search_path = evil, pg_catalog, public")
    assert app.execute("SELECT 'a'::text = 'b'::text").fetchone() == (False,)
    assert app.execute("SELECT count(*) FROM evil.log").fetchone() == (1,)  # shadowing works
    conn.execute("DELETE FROM evil.log")

    app.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (7, 1, 'click')")
    app.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
        " VALUES (8, 2, 'click', pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 minute')"
    )
    with pytest.raises(psycopg.errors.CheckViolation, match="value 9 is invalid"):
        app.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, value) VALUES (7, 1, 'rate', 9)"
        )
    with pytest.raises(psycopg.errors.CheckViolation, match="occurred_at"):
        app.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
            " VALUES (7, 1, 'click', pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 day')"
        )
    app.execute("DELETE FROM recdb.events WHERE user_id OPERATOR(pg_catalog.=) 8")
    assert conn.execute("SELECT who FROM evil.log").fetchall() == []
    # ...and the trigger did its work
    assert conn.execute(
        "SELECT array_agg(DISTINCT user_id ORDER BY user_id) FROM recdb.user_queue"
    ).fetchone() == ([7, 8],)
    assert conn.execute("SELECT sign FROM recdb.popularity_changes").fetchall() == [(-1,)]
    conn.execute("DROP SCHEMA evil CASCADE")
