"""An upgraded install and a fresh one must be the same database, whatever the path.

Compared as sets (tests/migrations/catalog.py): functions with their full definitions,
attributes and grants, columns, constraints, indexes, triggers, table/column grants.
"""

from __future__ import annotations

import psycopg
import pytest

from recdb.db import schema
from recdb.db.revision_sql import FUNCTIONS, function_files
from recdb.db.sqlfiles import read_sql
from tests.migrations.catalog import assert_same, catalog
from tests.support.database import TEST_DIM

BEFORE_FUNCTIONS_BY_CONCERN = "0003"


@pytest.fixture(scope="module")
def head_catalog(template_url):
    """`upgrade head` on an empty database (the tests' template is exactly that)."""
    return catalog(template_url)


def _fill(url: str) -> None:
    """A few rows of everything, as an existing install would have."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "INSERT INTO recdb.items (item_id, title, embedding)"
            f" SELECT i, 'item ' || i, array_fill(i::real, ARRAY[{TEST_DIM}])::vector"
            " FROM generate_series(1, 5) i"
        )
        c.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind, value) VALUES"
            " (1, 1, 'click', NULL), (1, 2, 'rate', 5), (2, 2, 'rate', 1), (2, 3, 'like', NULL)"
        )
        c.execute("INSERT INTO recdb.users (user_id, encoded_through) VALUES (1, 1)")
        c.execute("SELECT recdb.refresh_popularity(), recdb.refresh_neighbors()")


def test_an_upgraded_install_equals_a_fresh_one(empty_db_url, head_catalog):
    schema.upgrade(empty_db_url, BEFORE_FUNCTIONS_BY_CONCERN, embedding_dim=TEST_DIM)
    _fill(empty_db_url)
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "upgraded from 0003", "fresh head")


def test_0004_downgrade_restores_0003_and_upgrade_returns_to_head(empty_db_url, head_catalog):
    schema.upgrade(empty_db_url, BEFORE_FUNCTIONS_BY_CONCERN, embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    _fill(empty_db_url)
    schema.upgrade(empty_db_url, "0004", embedding_dim=TEST_DIM)
    schema.downgrade(empty_db_url, BEFORE_FUNCTIONS_BY_CONCERN)
    assert schema.current(empty_db_url) == BEFORE_FUNCTIONS_BY_CONCERN
    assert_same(catalog(empty_db_url), released, "downgraded to 0003", "fresh 0003")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")
    with psycopg.connect(empty_db_url) as c:  # the data went through both ways
        assert c.execute("SELECT count(*) FROM recdb.events").fetchone()[0] == 4
        assert c.execute("SELECT count(*) FROM rerank(1)").fetchone()[0] == 3


def test_0004_keeps_every_function_contract(empty_db_url):
    """Same signature, result, SECURITY DEFINER, SET clauses (pinned search_path, hnsw
    settings), volatility and grants for every function 0003 had; only bodies change."""
    schema.upgrade(empty_db_url, BEFORE_FUNCTIONS_BY_CONCERN, embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    schema.upgrade(empty_db_url, "0004", embedding_dim=TEST_DIM)
    after = catalog(empty_db_url)
    names = {r[0] for r in released["functions"]}
    # every column of the functions query but the last, pg_get_functiondef()
    assert {r[:-1] for r in after["functions"] if r[0] in names} == {
        r[:-1] for r in released["functions"]
    }
    assert {r for r in after["function_grants"] if r[0] in names} == (released["function_grants"])
    new = {r[0] for r in after["functions"]} - names
    assert new == {"recdb.enqueue_items(bigint[])", "recdb.recent_positive_items(bigint,integer)"}
    with psycopg.connect(empty_db_url) as c:
        owner = c.execute("SELECT current_user").fetchone()[0]
    # enqueue_items: the worker (PUBLIC revoked); recent_positive_items: whoever ranks
    assert {r for r in after["function_grants"] if r[0] in new} == {
        *{
            ("recdb.enqueue_items(bigint[])", "EXECUTE", False, role, True)
            for role in (owner, "recdb_worker")
        },
        *{
            ("recdb.recent_positive_items(bigint,integer)", "EXECUTE", False, role, True)
            for role in (owner, "recdb_app", "recdb_worker", "recdb_readonly")
        },
    }


def _vector_schema(url: str) -> str:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]


def test_function_files_are_idempotent(db_url, head_catalog):
    vec = _vector_schema(db_url)
    with psycopg.connect(db_url, autocommit=True) as c:
        for _ in range(2):
            for name in function_files():
                c.execute(read_sql(f"{FUNCTIONS}/{name}", dim=TEST_DIM, vec=vec))
    assert_same(catalog(db_url), head_catalog, "functions applied twice more", "fresh head")


def test_0010_downgrade_restores_0009_and_upgrade_returns_to_head(empty_db_url, head_catalog):
    """Popularity's tables (0010) and item_popularity as a table (0009), both ways, with
    the served scores kept."""
    schema.upgrade(empty_db_url, "0009", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    _fill(empty_db_url)
    with psycopg.connect(empty_db_url) as c:
        before = dict(c.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())
    assert before and max(before.values()) == 1.0
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    with psycopg.connect(empty_db_url) as c:  # served as before until the first refresh
        assert dict(c.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall()) == (
            before
        )
        c.execute("SELECT recdb.refresh_popularity()")  # rebuilds: the same scores
        after = dict(c.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())
        assert after == pytest.approx(before, rel=1e-9)
    schema.downgrade(empty_db_url, "0009")
    assert_same(catalog(empty_db_url), released, "downgraded to 0009", "fresh 0009")
    with psycopg.connect(empty_db_url) as c:
        got = dict(c.execute("SELECT item_id, score FROM recdb.item_popularity").fetchall())
        assert got == pytest.approx(before, rel=1e-9)
        c.execute("SELECT recdb.refresh_popularity()")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT count(*) FROM rerank(1)").fetchone()[0] == 3


def _votes(url: str) -> dict[tuple[int, int], float]:
    with psycopg.connect(url) as c:
        return {
            (u, i): v
            for u in (1, 2)
            for i, v in c.execute("SELECT * FROM recdb.covisit_votes(%s, 200)", (u,)).fetchall()
        }


def test_0011_downgrade_restores_0010_and_upgrade_returns_to_head(empty_db_url, head_catalog):
    """Co-visitation scores without the member's count (0011) and cosines (0010), both
    ways: rerank()'s votes stay the same before and after each step's rebuild."""
    schema.upgrade(empty_db_url, "0010", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    _fill(empty_db_url)
    before = _votes(empty_db_url)
    assert before
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert _votes(empty_db_url) == pytest.approx(before, rel=1e-6)  # converted rows
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT count(*) FROM recdb.covisit_state").fetchone()[0] == 0
        c.execute("SELECT recdb.sync_covisitation(200)")  # the one rebuild
        assert c.execute("SELECT count(*) FROM recdb.covisit_state").fetchone()[0] == 1
    assert _votes(empty_db_url) == pytest.approx(before, rel=1e-6)
    schema.downgrade(empty_db_url, "0010")
    assert_same(catalog(empty_db_url), released, "downgraded to 0010", "fresh 0010")
    assert _votes(empty_db_url) == pytest.approx(before, rel=1e-6)
    with psycopg.connect(empty_db_url) as c:
        c.execute("SELECT recdb.sync_covisitation(200)")  # 0010's rebuild
    assert _votes(empty_db_url) == pytest.approx(before, rel=1e-6)
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT count(*) FROM rerank(1)").fetchone()[0] == 3


def _reloptions(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'recdb.item_neighbors'::regclass"
        )
        return sorted(row.fetchone()[0] or [])


UNLOGGED = ("covisit_pairs", "covisit_user_items", "covisit_reserve", "covisit_runner_up",
            "covisit_queue", "covisit_state")  # fmt: skip


def _unlogged(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'recdb'::regnamespace"
            " AND relkind = 'r' AND relpersistence = 'u' ORDER BY 1"
        )
        return [r[0] for r in rows.fetchall()]


def test_0012_unlogs_the_covisit_work_tables_vacuums_item_neighbors_sooner_and_downgrades(
    empty_db_url, head_catalog
):
    """The co-visitation working state leaves the WAL (a crash costs one rebuild,
    test_covisitation.py), the served lists stay logged; rerank()'s votes are an
    index-only read only while the visibility map covers item_neighbors, so autovacuum
    visits it at 1% of rows changed, not 20%."""
    schema.upgrade(empty_db_url, "0011", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    assert _reloptions(empty_db_url) == [] and _unlogged(empty_db_url) == []
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert _reloptions(empty_db_url) == [
        "autovacuum_vacuum_insert_scale_factor=0.01",
        "autovacuum_vacuum_scale_factor=0.01",
    ]
    assert _unlogged(empty_db_url) == sorted(UNLOGGED)
    schema.downgrade(empty_db_url, "0011")
    assert_same(catalog(empty_db_url), released, "downgraded to 0011", "fresh 0011")
    assert _reloptions(empty_db_url) == [] and _unlogged(empty_db_url) == []
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")


def test_0013_lists_the_new_items_from_a_rebuild_keeps_them_and_downgrades(
    empty_db_url, head_catalog
):
    """0013 starts recdb.new_items from a rebuild (items encoded after the last
    maintenance run were missing) and from then on the items trigger keeps it; the
    downgrade drops the trigger's part and list_new_items()."""
    schema.upgrade(empty_db_url, "0012", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    _fill(empty_db_url)  # items 1-5 with vectors, 1-3 with events: 4 and 5 are new

    def listed() -> list[int]:
        with psycopg.connect(empty_db_url) as c:
            rows = c.execute("SELECT item_id FROM recdb.new_items ORDER BY 1").fetchall()
            return [r[0] for r in rows]

    assert listed() == []  # 0012 lists them only when the content prior is refitted
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert listed() == [4, 5]
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO recdb.items (item_id, title, embedding)"
            f" VALUES (6, 'six', array_fill(6::real, ARRAY[{TEST_DIM}])::vector)"
        )
    assert listed() == [4, 5, 6]
    schema.downgrade(empty_db_url, "0012")
    assert_same(catalog(empty_db_url), released, "downgraded to 0012", "fresh 0012")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")


def _events_key(url: str) -> tuple[str, list[str]]:
    with psycopg.connect(url) as c:
        key = c.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_pkey'"
            " AND conrelid = 'recdb.events'::regclass"
        ).fetchone()[0]
        opts = c.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'recdb.events'::regclass"
        ).fetchone()[0]
        return key, sorted(opts or [])


VACUUM_AT_1_PERCENT = ["autovacuum_vacuum_insert_scale_factor=0.01"]


def _events_key_revision(
    url: str,
    head_catalog: dict,
    previous: str,
    revision: str,
    key_before: tuple[str, list[str]],
    key_after: tuple[str, list[str]],
) -> None:
    """A revision that rebuilds events_pkey: the key goes from key_before to key_after,
    the events and the key's uniqueness stay, the downgrade equals a fresh `previous`
    and up again equals a fresh head."""
    schema.upgrade(url, previous, embedding_dim=TEST_DIM)
    released = catalog(url)
    _fill(url)
    assert _events_key(url) == key_before

    def events() -> list[tuple]:
        with psycopg.connect(url) as c:
            return c.execute("SELECT * FROM recdb.events ORDER BY event_id").fetchall()

    before = events()
    schema.upgrade(url, revision, embedding_dim=TEST_DIM)
    assert _events_key(url) == key_after
    assert events() == before
    with psycopg.connect(url) as c, pytest.raises(psycopg.errors.UniqueViolation):
        c.execute(
            "INSERT INTO recdb.events (event_id, user_id, item_id, kind)"
            " OVERRIDING SYSTEM VALUE VALUES (%s, 1, 1, 'click')",
            (before[0][0],),
        )
    schema.downgrade(url, previous)
    assert_same(catalog(url), released, f"downgraded to {previous}", f"fresh {previous}")
    assert events() == before
    schema.upgrade(url, embedding_dim=TEST_DIM)
    assert_same(catalog(url), head_catalog, "down and up again", "fresh head")


def test_0014_carries_the_history_in_the_events_key_and_downgrades(empty_db_url, head_catalog):
    """0014 rebuilds events_pkey with the columns rerank() reads of a user's history
    (index-only reads: tests/sql/test_rerank.py) and autovacuums events at 1% new rows;
    the events stay as they were, and the downgrade restores 0013's key."""
    _events_key_revision(
        empty_db_url,
        head_catalog,
        "0013",
        "0014",
        ("PRIMARY KEY (user_id, event_id)", []),
        ("PRIMARY KEY (user_id, event_id) INCLUDE (item_id, kind, value)", VACUUM_AT_1_PERCENT),
    )


def test_0017_carries_the_event_time_in_the_events_key_and_downgrades(empty_db_url, head_catalog):
    """0017 adds occurred_at to events_pkey (the worker's read of a user's history is
    index-only: tests/worker/test_reader.py); the events and the key's uniqueness stay,
    and the downgrade restores 0016's key."""
    _events_key_revision(
        empty_db_url,
        head_catalog,
        "0016",
        "0017",
        ("PRIMARY KEY (user_id, event_id) INCLUDE (item_id, kind, value)", VACUUM_AT_1_PERCENT),
        (
            "PRIMARY KEY (user_id, event_id) INCLUDE (item_id, kind, value, occurred_at)",
            VACUUM_AT_1_PERCENT,
        ),
    )


def _neighbors(url: str) -> tuple[list[tuple], dict[tuple[int, int], float]]:
    """item_neighbors' rows and both users' votes."""
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT item_id, neighbor_id, score FROM recdb.item_neighbors ORDER BY 1, 2"
        ).fetchall()
    return rows, _votes(url)


def test_0018_bounds_the_votes_keeps_the_lists_and_downgrades(empty_db_url, head_catalog):
    """0018 adds settings.covisit_fanout (100) and re-keys item_neighbors for a bounded,
    index-only read of an item's best holders; the lists, their uniqueness and the votes
    stay, and the downgrade restores 0017's keys."""
    schema.upgrade(empty_db_url, "0017", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    _fill(empty_db_url)
    before = _neighbors(empty_db_url)
    assert before[0] and before[1]
    schema.upgrade(empty_db_url, "0018", embedding_dim=TEST_DIM)
    assert _neighbors(empty_db_url) == before
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT covisit_fanout FROM recdb.settings").fetchone()[0] == 100
        item, neighbor, _ = before[0][0]
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(
                "INSERT INTO recdb.item_neighbors (item_id, neighbor_id, score) VALUES (%s, %s, 1)",
                (item, neighbor),
            )
    schema.downgrade(empty_db_url, "0017")
    assert_same(catalog(empty_db_url), released, "downgraded to 0017", "fresh 0017")
    assert _neighbors(empty_db_url) == before
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")


@pytest.mark.parametrize(("chosen", "after"), [(3, 2), (5, 5)])
def test_0019_narrows_the_default_pool_and_downgrades(empty_db_url, head_catalog, chosen, after):
    """0019 makes candidate_factor default to 2: a database at the old default (3) follows,
    one that chose another factor keeps it; the downgrade restores 0018's default."""
    schema.upgrade(empty_db_url, "0018", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    with psycopg.connect(empty_db_url) as c:
        c.execute("UPDATE recdb.settings SET candidate_factor = %s", (chosen,))
    schema.upgrade(empty_db_url, "0019", embedding_dim=TEST_DIM)
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT candidate_factor FROM recdb.settings").fetchone()[0] == after
    schema.downgrade(empty_db_url, "0018")
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT candidate_factor FROM recdb.settings").fetchone()[0] == (
            3 if after == 2 else after
        )
    assert_same(catalog(empty_db_url), released, "downgraded to 0018", "fresh 0018")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")


def test_0020_unpins_the_events_trigger_alone_and_downgrades(empty_db_url, head_catalog):
    """0020 drops the events trigger's SET search_path (it names nothing unqualified
    instead) and changes nothing else; the downgrade pins it again."""

    def config(url: str) -> dict[str, list[str] | None]:
        with psycopg.connect(url) as c:
            rows = c.execute(
                "SELECT proname, proconfig FROM pg_proc"
                " WHERE pronamespace = 'recdb'::regnamespace AND prosecdef"
            ).fetchall()
        return dict(rows)

    schema.upgrade(empty_db_url, "0019", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    assert config(empty_db_url)["events_changed"] == ["search_path=pg_catalog, pg_temp"]
    schema.upgrade(empty_db_url, "0020", embedding_dim=TEST_DIM)
    after = config(empty_db_url)
    assert after.pop("events_changed") is None
    assert all(c and any(s.startswith("search_path=") for s in c) for c in after.values())
    schema.downgrade(empty_db_url, "0019")
    assert_same(catalog(empty_db_url), released, "downgraded to 0019", "fresh 0019")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")


def test_0021_changes_the_co_visitation_step_alone_and_downgrades(empty_db_url, head_catalog):
    """0021 redefines recdb.covisit_apply() (which moved keys it checks) and nothing else;
    the downgrade restores 0020's."""
    schema.upgrade(empty_db_url, "0020", embedding_dim=TEST_DIM)
    released = catalog(empty_db_url)
    schema.upgrade(empty_db_url, "0021", embedding_dim=TEST_DIM)
    upgraded = catalog(empty_db_url)
    changed = {r[0] for r in released["functions"] ^ upgraded["functions"]}
    assert changed == {"recdb.covisit_apply(bigint[])"}
    assert {k: v for k, v in upgraded.items() if k != "functions"} == {
        k: v for k, v in released.items() if k != "functions"
    }
    schema.downgrade(empty_db_url, "0020")
    assert_same(catalog(empty_db_url), released, "downgraded to 0020", "fresh 0020")
    schema.upgrade(empty_db_url, embedding_dim=TEST_DIM)
    assert_same(catalog(empty_db_url), head_catalog, "down and up again", "fresh head")
