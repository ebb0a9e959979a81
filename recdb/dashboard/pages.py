"""What each dashboard page reads: one function per page, on one read-only connection,
each panel through `panel()` so a missing right costs a panel, not the page."""

from __future__ import annotations

from typing import Any

import psycopg

from recdb.dashboard.db import Panel, panel
from recdb.db.sqlfiles import query
from recdb.metrics import read_gauges
from recdb.status import LIVE_WITHIN_S

_Q = "queries/dashboard.sql"
_STATUS = "queries/status.sql"
RECENT_EVENTS = 50  # events shown on a user page, newest first
SIMILAR_K = 10
MODELS_SHOWN = 50
MAX_CHARS = 5000  # of an item's body and attrs


def _all(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    return conn.execute(sql, params).fetchall()


def _one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> dict[str, Any] | None:
    return conn.execute(sql, params).fetchone()


def whoami(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The role the page was read as (the footer)."""
    return _one(conn, query(_Q, "dashboard_whoami"))


def status(conn: psycopg.Connection[Any]) -> dict[str, Panel[Any]]:
    """Queues, parked rows, live workers, the active model, maintenance, table sizes."""
    return {
        "queues": panel(conn, read_gauges),
        "parked": panel(conn, lambda c: _all(c, query(_STATUS, "parked"))),
        "workers": panel(
            conn,
            lambda c: _all(c, query(_STATUS, "workers"), {"live_within_s": LIVE_WITHIN_S}),
        ),
        "model": panel(conn, lambda c: _one(c, query(_STATUS, "active_model_summary"))),
        "maintenance": panel(conn, lambda c: _one(c, query(_STATUS, "maintenance"))),
        "sizes": panel(conn, lambda c: _all(c, query(_Q, "dashboard_estimates"))),
    }


def user(conn: psycopg.Connection[Any], user_id: int, k: int) -> dict[str, Any] | None:
    """The user's vector bookkeeping, newest events and rerank() top k; None when no event
    names the user and no vector is stored (an unknown user)."""
    known = _one(conn, query(_Q, "dashboard_user"), {"user_id": user_id})
    assert known is not None  # one row, always
    if not (known["has_events"] or known["stored"]):
        return None
    ids = {"user_id": user_id}
    return {
        "user": known,
        "events": panel(
            conn,
            lambda c: _all(c, query(_Q, "dashboard_user_events"), {**ids, "limit": RECENT_EVENTS}),
        ),
        "ranking": panel(conn, lambda c: _all(c, query(_Q, "dashboard_rerank"), {**ids, "k": k})),
    }


def item(conn: psycopg.Connection[Any], item_id: int) -> dict[str, Any] | None:
    """The item and its nearest items; None for an unknown id."""
    row = _one(conn, query(_Q, "dashboard_item"), {"item_id": item_id, "max_chars": MAX_CHARS})
    if row is None:
        return None
    similar = panel(
        conn,
        lambda c: _all(c, query(_Q, "dashboard_similar"), {"item_id": item_id, "k": SIMILAR_K}),
    )
    return {"item": row, "similar": similar}


def models(conn: psycopg.Connection[Any]) -> Panel[Any]:
    """The registry's newest rows: metadata and metrics, never the weights."""
    return panel(
        conn, lambda c: _all(c, query("queries/models.sql", "list_models"), {"limit": MODELS_SHOWN})
    )
