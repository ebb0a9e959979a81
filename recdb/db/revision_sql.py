"""What migrations call to load their SQL files with the placeholders filled in.

@DIM@ is the embedding dimension (config.attributes["embedding_dim"], `-x dim=N`, or
RECDB_EMBEDDING_DIM) and @VEC@ the schema that holds pgvector (looked up online;
`public`, or `-x vector_schema=...`, offline).
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import text

from recdb.config import embedding_dim
from recdb.db.sqlfiles import read_sql


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
