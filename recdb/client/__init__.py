"""The Python client: recdb's SQL API (track events, write items, rerank) as typed calls.

`Client` for threads, `AsyncClient` for asyncio; both pool their connections
(psycopg_pool), run the named queries of sql/queries/client.sql, return frozen
dataclasses and raise the exceptions of `recdb.client.errors`.
"""

from recdb.client.aio import AsyncClient
from recdb.client.errors import (
    ClientClosed,
    InvalidArgument,
    InvalidEvent,
    InvalidItem,
    PermissionDenied,
    RecdbError,
    Unavailable,
    UnknownItem,
    UnknownKind,
)
from recdb.client.sync import Client
from recdb.client.types import (
    DEFAULT_K,
    Event,
    Item,
    Recommendation,
    SimilarItem,
    Status,
)

__all__ = [
    "DEFAULT_K",
    "AsyncClient",
    "Client",
    "ClientClosed",
    "Event",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidItem",
    "Item",
    "PermissionDenied",
    "RecdbError",
    "Recommendation",
    "SimilarItem",
    "Status",
    "Unavailable",
    "UnknownItem",
    "UnknownKind",
]
