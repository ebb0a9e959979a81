"""Alembic: round trip, offline SQL, embedding dimension, config in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory

from recdb.db import schema
from tests.support import REPO_ROOT

ROOT = REPO_ROOT
# one head, or this raises: the revisions form a single chain
HEAD = ScriptDirectory.from_config(schema.alembic_config()).get_current_head()


def _objects(url: str) -> dict[str, list]:
    with psycopg.connect(url) as c:
        return {
            "schemas": c.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = 'recdb'"
            ).fetchall(),
            "public_functions": c.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
                " AND proname IN ('rerank', 'similar_items') ORDER BY 1"
            ).fetchall(),
            "extensions": c.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall(),
        }


def test_upgrade_downgrade_upgrade_round_trip(empty_db_url):
    before = _objects(empty_db_url)
    schema.upgrade(empty_db_url, embedding_dim=16)
    assert schema.current(empty_db_url) == HEAD
    up = _objects(empty_db_url)
    assert up["schemas"] == [("recdb",)]
    assert up["public_functions"] == [("rerank",), ("similar_items",)]
    assert ("vector",) in up["extensions"]

    schema.downgrade(empty_db_url, "base")
    assert schema.current(empty_db_url) is None
    assert _objects(empty_db_url) == before  # everything it created is gone, nothing else

    schema.upgrade(empty_db_url, embedding_dim=16)
    with psycopg.connect(empty_db_url) as c:
        c.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'x')")
        assert c.execute("SELECT count(*) FROM rerank(1)").fetchone()[0] == 1


def test_downgrade_keeps_a_vector_extension_it_did_not_create(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")
        c.execute("CREATE TABLE public.mine (v vector(3))")
    schema.upgrade(empty_db_url, embedding_dim=8)
    schema.downgrade(empty_db_url, "base")
    with psycopg.connect(empty_db_url) as c:
        assert (
            c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
            == 1
        )
        assert c.execute("SELECT to_regclass('public.mine') IS NOT NULL").fetchone()[0]


def test_embedding_dimension_is_fixed_at_first_migration(empty_db_url):
    schema.upgrade(empty_db_url, embedding_dim=24)
    with psycopg.connect(empty_db_url) as c:
        types = c.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid IN ('recdb.items'::regclass, 'recdb.users'::regclass)"
            " AND attname = 'embedding'"
        ).fetchall()
    assert types == [("vector(24)",), ("vector(24)",)]


def test_offline_sql_shows_extension_index_and_functions():
    text = schema.offline_sql()
    assert "CREATE EXTENSION IF NOT EXISTS vector" in text
    assert "USING hnsw (embedding vector_cosine_ops)" in text
    assert "CREATE FUNCTION recdb.rerank(" in text
    assert "CREATE FUNCTION public.rerank(" in text
    assert "CREATE FUNCTION recdb.similar_items(" in text
    assert "vector(384)" in text and "@DIM@" not in text
    # psql-ready: % signs of format() and RAISE are not doubled by the driver's escaping
    assert "%%" not in text and "ADD COLUMN text_embedding %s'" in text
    assert "vector(64)" in schema.offline_sql(embedding_dim=64)


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_plain_alembic_from_repo_root_uses_pyproject_config(empty_db_url):
    alembic = str(Path(sys.executable).with_name("alembic"))
    res = _run(alembic, "-x", f"url={empty_db_url}", "-x", "dim=8", "upgrade", "head")
    assert res.returncode == 0, res.stderr
    assert schema.current(empty_db_url) == HEAD
    res = _run(alembic, "upgrade", "head", "--sql")
    assert res.returncode == 0, res.stderr
    assert "CREATE INDEX items_embedding_hnsw" in res.stdout


def test_recdb_db_commands(empty_db_url):
    recdb = [sys.executable, "-m", "recdb.cli"]
    env = {"RECDB_DATABASE_URL": empty_db_url, "RECDB_EMBEDDING_DIM": "8"}
    res = _run(*recdb, "db", "url", env_extra=env)
    assert res.stdout.strip() == empty_db_url
    res = _run(*recdb, "db", "upgrade", env_extra=env)
    assert res.returncode == 0 and f"revision {HEAD}" in res.stdout, res.stderr
    res = _run(*recdb, "db", "sql", env_extra=env)
    assert "vector(8)" in res.stdout
    res = _run(*recdb, "db", "downgrade", "base", env_extra=env)
    assert res.returncode == 0 and "revision base" in res.stdout, res.stderr


def test_0003_keeps_text_vectors_and_downgrade_restores_them(empty_db_url):
    """Upgrading a live 0002 database loses no vector; downgrading puts text vectors back."""
    schema.upgrade(empty_db_url, "0002", embedding_dim=4)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'a'), (2, 'b')")
        c.execute("UPDATE recdb.items SET embedding = '[1,0,0,0]' WHERE item_id = 1")
    schema.upgrade(empty_db_url, embedding_dim=4)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        rows = c.execute(
            "SELECT item_id, text_embedding::text, embedding::text FROM recdb.items ORDER BY 1"
        ).fetchall()
        assert rows == [(1, "[1,0,0,0]", "[1,0,0,0]"), (2, None, None)]
        # a model's item output replaces embedding; the downgrade goes back to the text one
        c.execute("UPDATE recdb.items SET embedding = '[0,1,0,0]' WHERE item_id = 1")
        c.execute(
            "INSERT INTO recdb.users (user_id, embedding, encoder) VALUES"
            " (7, '[0,1,0,0]', 'sequence:1'), (8, '[1,0,0,0]', 'mean')"
        )
    schema.downgrade(empty_db_url, "0002")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        # the model-space user is queued for re-encoding in the text space
        assert c.execute("SELECT user_id FROM recdb.user_queue").fetchall() == [(7,)]
        assert (
            c.execute("SELECT embedding::text FROM recdb.items WHERE item_id = 1").fetchone()[0]
            == "[1,0,0,0]"
        )
        assert c.execute("SELECT to_regclass('recdb.models')").fetchone()[0] is None


def test_0016_moves_the_served_vectors_into_their_space_and_back(empty_db_url):
    """Upgrading a live 0015 database serving a model: its vectors become that model's
    partition (indexed), rerank() searches it; the downgrade puts the index back on items."""
    schema.upgrade(empty_db_url, "0015", embedding_dim=4)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        c.execute(
            "UPDATE recdb.items SET embedding = ('[1,' || item_id || ',0,0]')::vector"
            " WHERE item_id < 3"
        )
        model = c.execute(
            "INSERT INTO recdb.models (config, metrics, text_dim, dim, trained_through, blob,"
            " sha256) VALUES ('{}', '{}', 4, 4, 0, '\\x00', sha256('\\x00')) RETURNING model_id"
        ).fetchone()[0]
        c.execute("UPDATE recdb.models SET active = true")
        c.execute("UPDATE recdb.serving SET model_id = %s", (model,))
        c.execute("INSERT INTO recdb.users (user_id, embedding) VALUES (9, '[1,1,0,0]')")
    schema.upgrade(empty_db_url, embedding_dim=4)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert c.execute(
            "SELECT space, item_id, embedding::text FROM recdb.item_vectors ORDER BY 2"
        ).fetchall() == [(model, 1, "[1,1,0,0]"), (model, 2, "[1,2,0,0]")]
        assert c.execute("SELECT to_regclass('recdb.items_embedding_hnsw')").fetchone()[0] is None
        index = f"recdb.item_vectors_{model}_hnsw"
        assert c.execute("SELECT to_regclass(%s)::text", (index,)).fetchone()[0] == index
        got = c.execute("SELECT item_id FROM rerank(9, exclude_seen => false)").fetchall()
        assert sorted(got) == [(1,), (2,)]
    schema.downgrade(empty_db_url, "0015")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert c.execute("SELECT to_regclass('recdb.item_vectors')").fetchone()[0] is None
        assert (
            c.execute("SELECT to_regclass('recdb.items_embedding_hnsw')::text").fetchone()[0]
            == "recdb.items_embedding_hnsw"
        )
        got = c.execute("SELECT item_id FROM rerank(9, exclude_seen => false)").fetchall()
        assert sorted(got) == [(1,), (2,)]
