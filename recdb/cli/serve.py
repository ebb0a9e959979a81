"""`recdb serve`: the read-only dashboard and /metrics (Starlette + uvicorn).

It reads as recdb_readonly: the login (--database-url, else the embedded server's
superuser) must be a member of that role or a superuser. It binds 127.0.0.1 unless told
otherwise; it has no login of its own, so put it behind an authenticating proxy before
binding it anywhere else.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recdb.cli.options import add_option


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--host",
        default="127.0.0.1",
        env_var="RECDB_SERVE_HOST",
        help="address to bind (127.0.0.1: this machine only)",
    )
    add_option(parser, "--port", type=int, default=8700, env_var="RECDB_SERVE_PORT", help="port")
    add_option(
        parser,
        "--eval-json",
        metavar="PATH",
        help="`recdb eval --json` result shown on the results page (the variable both read)",
    )
    add_option(
        parser, "--eval-plot", metavar="PATH", help="`recdb eval --plot` PNG shown beside it"
    )
    add_option(
        parser,
        "--bench-json",
        metavar="PATH",
        help="`recdb bench --json` result shown on the results page (e.g. docs/bench.json)",
    )
    add_option(
        parser,
        "--pool-size",
        type=int,
        default=4,
        env_var="RECDB_SERVE_POOL_SIZE",
        help="database connections at most",
    )
    add_option(
        parser,
        "--access-log",
        flag=True,
        env_var="RECDB_SERVE_ACCESS_LOG",
        help="log every request",
    )


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def main(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from recdb.dashboard import ResultFiles, create_app
        from recdb.dashboard.app import LOOPBACK_HOSTS
    except ImportError as exc:
        raise RuntimeError(
            f"recdb serve needs the serve extra: pip install 'recdb[serve]' ({exc})"
        ) from None
    from recdb.dashboard.db import check_access
    from recdb.db import database_url

    url = database_url()
    who = check_access(url)
    files = ResultFiles(_path(args.eval_json), _path(args.eval_plot), _path(args.bench_json))
    # Bound to loopback, only loopback Host headers are served (no DNS rebinding).
    hosts = LOOPBACK_HOSTS if args.host in LOOPBACK_HOSTS else ("*",)
    app = create_app(url, files, allowed_hosts=hosts, pool_size=args.pool_size)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"recdb dashboard on http://{shown}:{args.port}/ (metrics at /metrics), reading"
        f" database {who['database']} as {who['role']}; Ctrl-C stops it",
        flush=True,
    )
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="debug" if debug else "info" if args.access_log else "warning",
        access_log=args.access_log,
        server_header=False,
    )
    return 0
