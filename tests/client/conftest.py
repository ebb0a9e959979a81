"""A small embedded catalog (vectors written as the worker would) and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from recdb.client import Client
from tests.support.builders import add_items, axis, unit
from tests.support.roles import with_role


@pytest.fixture
def catalog(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """60 embedded items on 3 topics (axes 0, 1, 2), ids 100.., 200.., 300..; the topic in
    attrs. Every item is in the item queue, as after any insert."""
    rows = [
        {
            "item_id": (t + 1) * 100 + j,
            "title": f"topic {t} item {j}",
            "attrs": {"topic": t},
            "embedding": unit(axis(t) + axis(10 + j) * 0.05 * (j + 1)),
        }
        for t in range(3)
        for j in range(20)
    ]
    add_items(conn, rows)
    return rows


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def app_url(db_url: str, conn: psycopg.Connection[Any]) -> str:
    """db_url logging in as a role that is a member of recdb_app only."""
    return with_role(db_url, conn, "recdb_app")
