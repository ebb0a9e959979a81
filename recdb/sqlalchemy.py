"""recdb for SQLAlchemy 2.0: its tables as Core `Table`s and the ranking functions as
table-valued functions, so one query can join an app's own tables to rerank().

    rec = rerank(bindparam("user_id"), k=50)
    select(products.c.name, rec.c.score).join(products, products.c.item_id == rec.c.item_id)
        .where(products.c.stock > 0).order_by(rec.c.rank)

The tables describe what an application reads and writes; the schema itself belongs to
recdb's migrations: never `metadata.create_all()` this metadata. The vector columns
(`embedding`, `text_embedding`) are left out: the app role may not write them, their
dimension is fixed per database at the first migration, and `select(items)` should not
fetch hundreds of floats per row. Ranking by vector is rerank()'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    cast,
    column,
    func,
    literal,
    null,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from recdb.client.types import DEFAULT_EXCLUDE_SEEN, DEFAULT_K

metadata = MetaData(schema="recdb")

items = Table(
    "items",
    metadata,
    Column("item_id", BigInteger, primary_key=True, autoincrement=False),
    Column("title", Text, nullable=False),
    Column("body", Text),
    Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("available", Boolean, nullable=False, server_default=true()),
    # the server's (read-only for the app role)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("embedded_at", DateTime(timezone=True)),  # NULL until the worker encodes it
)

events = Table(
    "events",
    metadata,
    Column("event_id", BigInteger, Identity(always=True), primary_key=True),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("value", REAL),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def _arg(value: Any, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """A Python value or a SQL expression (bindparam, a column), typed as the function
    declares it. None is SQL NULL (JSONB would otherwise send the JSON value null)."""
    if isinstance(value, ColumnElement):
        return cast(value, type_)
    if value is None:
        return cast(null(), type_)
    return literal(value, type_)


def rerank(
    user_id: int | ColumnElement[Any],
    k: int | ColumnElement[Any] = DEFAULT_K,
    candidates: Iterable[int] | ColumnElement[Any] | None = None,
    filter: Mapping[str, Any] | ColumnElement[Any] | None = None,
    exclude_seen: bool | ColumnElement[Any] = DEFAULT_EXCLUDE_SEEN,
) -> TableValuedAlias:
    """`recdb.rerank(...)` as a FROM item with typed columns rank, item_id, score,
    because_item_id, reason, fresh_events. Join on `.c.item_id`, order by `.c.rank`."""
    if candidates is not None and not isinstance(candidates, ColumnElement):
        candidates = list(candidates)
    fn = func.recdb.rerank(
        _arg(user_id, BigInteger()),
        _arg(k, Integer()),
        _arg(candidates, ARRAY(BigInteger)),
        _arg(filter, JSONB()),
        _arg(exclude_seen, Boolean()),
    )
    return fn.table_valued(
        column("rank", Integer),
        column("item_id", BigInteger),
        column("score", Double),
        column("because_item_id", BigInteger),
        column("reason", Text),
        column("fresh_events", Integer),
    )


def similar_items(
    item_id: int | ColumnElement[Any], k: int | ColumnElement[Any] = DEFAULT_K
) -> TableValuedAlias:
    """`recdb.similar_items(...)` as a FROM item with typed columns rank, item_id, score."""
    fn = func.recdb.similar_items(_arg(item_id, BigInteger()), _arg(k, Integer()))
    return fn.table_valued(
        column("rank", Integer),
        column("item_id", BigInteger),
        column("score", Double),
    )
