"""recdb: real-time personalized ranking inside PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from recdb.client import AsyncClient, Client

__all__ = ["AsyncClient", "Client"]


def __getattr__(name: str) -> Any:
    """`recdb.Client` / `recdb.AsyncClient` import the client (psycopg, its pool) on first
    use, so `import recdb` stays free of database and model imports."""
    if name in __all__:
        import recdb.client

        return getattr(recdb.client, name)
    raise AttributeError(f"module 'recdb' has no attribute {name!r}")
