"""What migrations call to load their SQL files with the placeholders filled in.

@DIM@ is the embedding dimension (config.attributes["embedding_dim"], `-x dim=N`, or
RECDB_EMBEDDING_DIM) and @VEC@ the schema that holds pgvector (looked up online;
`public`, or `-x vector_schema=...`, offline).

Two kinds of SQL (the pattern of pgai's incremental/idempotent migrations):

- sql/v000N/: what revision N ran, released and frozen (tests/migrations checks their
  hashes). Tables, columns, roles, data changes: each runs once, in order.
- sql/functions/: the current definition of every recdb function, trigger and function
  privilege, split by concern, idempotent (CREATE OR REPLACE, GRANT/REVOKE), run in
  file-name order (NNN_concern.sql, lowest layer first) by apply_functions().

A revision that changes functions edits sql/functions/ and calls apply_functions() with
its own id. Before the next such revision edits the folder, it freezes the current one
as sql/v000N/functions/ (N: the previous caller): from then on revision N applies its
frozen copy (so upgrading an old database never runs functions written for columns
that do not exist yet), and the new revision's downgrade restores it with
apply_functions("000N").
"""

from __future__ import annotations

import re

from alembic import context, op
from sqlalchemy import text

from recdb.config import embedding_dim
from recdb.db.sqlfiles import read_sql, sql_dir

FUNCTIONS = "functions"


def _dim() -> int:
    cfg = context.config
    dim = cfg.attributes.get("embedding_dim") or context.get_x_argument(as_dictionary=True).get(
        "dim"
    )
    if dim is None:
        return embedding_dim()
    if not str(dim).isdigit() or not 1 <= int(dim) <= 16000:
        raise ValueError(f"embedding dimension must be an integer in 1..16000, got {dim!r}")
    return int(dim)


def _vector_schema() -> str:
    given = context.get_x_argument(as_dictionary=True).get("vector_schema")
    if given or context.is_offline_mode():
        return given or "public"
    found = (
        op.get_bind()
        .execute(
            text(
                "SELECT coalesce((SELECT extnamespace::regnamespace::text FROM pg_extension"
                " WHERE extname = 'vector'), current_schema())"
            )
        )
        .scalar_one()
    )
    return str(found)


def load(relative: str) -> str:
    return read_sql(relative, dim=_dim(), vec=_vector_schema())


def functions_folder(revision: str) -> str:
    """Where revision's function definitions live: its frozen copy, or the current ones."""
    frozen = f"v{revision}/{FUNCTIONS}"
    return frozen if (sql_dir() / frozen).is_dir() else FUNCTIONS


def function_files(folder: str = FUNCTIONS) -> list[str]:
    """sql/<folder>/*.sql in the order they apply: by name (NNN_concern.sql)."""
    return sorted(p.name for p in (sql_dir() / folder).glob("*.sql"))


def apply_functions(revision: str) -> None:
    """(Re)define every recdb function as of `revision`, in order. Idempotent."""
    folder = functions_folder(revision)
    for name in function_files(folder):
        op.execute(load(f"{folder}/{name}"))


def replaceable(sql: str) -> str:
    """Released SQL with its CREATE FUNCTION/CREATE TRIGGER statements turned into
    CREATE OR REPLACE, so a downgrade can re-run them over the newer definitions.

    CREATE OR REPLACE FUNCTION keeps the owner and the grants, and resets every attribute
    the statement does not name (SECURITY DEFINER, SET): the caller restores those.
    """
    return re.sub(r"^CREATE (FUNCTION|TRIGGER) ", r"CREATE OR REPLACE \1 ", sql, flags=re.M)


def released_function(relative: str, name: str) -> str:
    """One CREATE FUNCTION statement of a released file (a plpgsql one, `... END $$;`),
    made CREATE OR REPLACE."""
    sql = load(relative)
    found = re.search(
        rf"^CREATE FUNCTION {re.escape(name)}\(.*?^END \$\$;$", sql, flags=re.M | re.S
    )
    if found is None:
        raise ValueError(f"sql/{relative} defines no plpgsql function {name}")
    return replaceable(found.group(0))


def adopt_roles() -> bool:
    """Whether pre-existing recdb_* roles with LOGIN/SUPERUSER/CREATEROLE/BYPASSRLS may be
    adopted (`-x adopt_roles=true` or RECDB_ADOPT_ROLES=true); by default they are refused."""
    from recdb.config import env

    raw = context.get_x_argument(as_dictionary=True).get("adopt_roles") or env("ADOPT_ROLES")
    return str(raw or "").strip().lower() in {"1", "true", "yes", "on"}


def load_with(relative: str, **placeholders: object) -> str:
    """load() with extra @NAME@ placeholders of one revision."""
    return read_sql(relative, dim=_dim(), vec=_vector_schema(), **placeholders)
