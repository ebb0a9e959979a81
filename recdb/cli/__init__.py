"""The `recdb` command line. Every option also reads RECDB_<OPTION> (shown in --help).

Each command group lives in its own module with `configure(parser)` and `main(args)`;
heavy libraries (torch, transformers) are imported inside `main` so --help stays fast.
The tooling commands (demo, eval, bench) are looked up by name in `recdb.tools`, which
the runtime never imports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from recdb.cli.options import add_common_options, add_option, apply_common_options

# (command, module with configure/main, help). A module that is not installed is skipped.
COMMANDS: list[tuple[str, str, str]] = [
    ("worker", "recdb.cli.worker", "encode queued items and users (LISTEN/NOTIFY + polling)"),
    ("load", "recdb.cli.load", "bulk-load a dataset (movielens)"),
    ("import", "recdb.cli.imports", "load your own items or events: CSV, JSONL, Parquet"),
    ("train", "recdb.cli.train", "train the sequence user encoder on the events, store it"),
    ("activate", "recdb.cli.activate", "serve a stored model: staged in bulk, switched at once"),
    ("refresh", "recdb.cli.refresh", "maintenance now: popularity, co-visitation, retention"),
    ("systemd-unit", "recdb.cli.systemd", "print a systemd unit for the worker"),
    ("serve", "recdb.cli.serve", "read-only dashboard and /metrics (127.0.0.1:8700)"),
    ("demo", "recdb.tools.demo", "the main job: MovieLens-100K end to end on the embedded default"),
    ("eval", "recdb.tools.eval.cli", "offline quality through rerank(): HR/NDCG/MRR@10, coverage"),
    ("bench", "recdb.tools.bench.cli", "performance figures in one run"),
]


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recdb",
        description="Real-time personalized ranking inside PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help_text: str, fn: Callable[[argparse.Namespace], int], parent: Any = sub
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text)
        add_common_options(p)
        p.set_defaults(func=fn)
        return p

    db = sub.add_parser("db", help="migrations and connection URL", description="database")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    command("url", "print the connection URL in use", _lazy("recdb.cli.db", "cmd_url"), dbsub)
    p = command(
        "upgrade", "apply migrations (alembic upgrade)", _lazy("recdb.cli.db", "cmd_upgrade"), dbsub
    )
    p.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    add_option(p, "--embedding-dim", type=int, help="vector dimension fixed by the first migration")
    p = command(
        "downgrade",
        "revert migrations (alembic downgrade)",
        _lazy("recdb.cli.db", "cmd_downgrade"),
        dbsub,
    )
    p.add_argument("revision", help="target revision, e.g. base or -1")
    p = command(
        "sql",
        "print the upgrade SQL for review (offline, no server)",
        _lazy("recdb.cli.db", "cmd_sql"),
        dbsub,
    )
    p.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    add_option(p, "--embedding-dim", type=int, help="vector dimension fixed by the first migration")
    command("stop", "stop the embedded server", _lazy("recdb.cli.db", "cmd_stop"), dbsub)

    p = command(
        "status",
        "queue depth, parked rows, live workers, coverage",
        _lazy("recdb.cli.status", "main"),
    )
    add_option(p, "--json", flag=True, help="print JSON")

    for name, module, help_text in COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.configure(command(name, help_text, _lazy(module, "main")))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_common_options(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for operators; tracebacks with --log-level DEBUG
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"recdb: error: {exc}", file=sys.stderr)
        return 1
