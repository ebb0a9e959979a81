"""The `recdb` command line. Every option also reads RECDB_<OPTION> (shown in --help)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

_TRUE = {"1", "true", "yes", "on"}


def env_name(option: str) -> str:
    return "RECDB_" + option.lstrip("-").replace("-", "_").upper()


def add_option(
    parser: argparse.ArgumentParser,
    option: str,
    *,
    flag: bool = False,
    env_var: str | None = None,
    **kwargs: Any,
) -> None:
    """An option whose default comes from its RECDB_* variable, named in the help text."""
    var = env_var or env_name(option)
    raw = os.environ.get(var)
    help_text = kwargs.pop("help", "")
    if flag:
        default = (raw or "").strip().lower() in _TRUE
        parser.add_argument(
            option, action="store_true", default=default, help=f"{help_text} [env: {var}]"
        )
        return
    conv = kwargs.get("type", str)
    default = kwargs.pop("default", None)
    if raw not in (None, ""):
        try:
            default = conv(raw)
        except (TypeError, ValueError):
            parser.error(f"{var}={raw!r} is not a valid value for {option}")
    shown = "" if default is None else f" (default: {default})"
    parser.add_argument(option, default=default, help=f"{help_text}{shown} [env: {var}]", **kwargs)


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """--device and --user-encoder, shared by every command that runs a worker."""
    add_option(parser, "--device", default="auto", help="auto (cuda if present), cpu or cuda")
    add_option(
        parser,
        "--user-encoder",
        default="auto",
        choices=("auto", "mean", "text", "sequence"),
        help="how user vectors are built (auto: the active trained model, else mean)",
    )


def add_movielens_path_option(parser: argparse.ArgumentParser) -> None:
    """--path for the commands that read MovieLens-100K."""
    add_option(
        parser,
        "--path",
        metavar="DIR",
        env_var="RECDB_MOVIELENS_PATH",
        help="MovieLens-100K folder (GroupLens u.data/u.item or RecBole atomic files);"
        " unset = the copy inside an installed recbole wheel",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL; unset = the embedded server under RECDB_HOME",
    )
    add_option(
        parser, "--home", metavar="DIR", help="where the embedded server, caches and results live"
    )
    add_option(parser, "--log-level", default="INFO", help="logging level")


def _apply_common(args: argparse.Namespace) -> None:
    # Children (worker subprocesses, alembic env.py) read the same settings from the env.
    if args.database_url:
        os.environ["RECDB_DATABASE_URL"] = args.database_url
    if args.home:
        os.environ["RECDB_HOME"] = args.home
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --- commands -------------------------------------------------------------------------------


def cmd_db_url(args: argparse.Namespace) -> int:
    from recdb.db import database_url

    print(database_url())
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from recdb import migrate

    migrate.upgrade(revision=args.revision, embedding_dim=args.embedding_dim)
    print(f"database at revision {migrate.current()}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from recdb import migrate

    migrate.downgrade(revision=args.revision)
    print(f"database at revision {migrate.current() or 'base'}")
    return 0


def cmd_db_sql(args: argparse.Namespace) -> int:
    from recdb import migrate

    sys.stdout.write(migrate.offline_sql(args.revision, embedding_dim=args.embedding_dim))
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from recdb import embedded

    print("embedded server stopped" if embedded.stop() else "embedded server was not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from recdb import status
    from recdb.db import connection

    with connection(autocommit=True, application_name="recdb status") as conn:
        snap = status.collect(conn)
    print(json.dumps(snap, indent=2, default=str) if args.json else status.render(snap))
    return 0


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


# --- parser ---------------------------------------------------------------------------------


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
        _common(p)
        p.set_defaults(func=fn)
        return p

    db = sub.add_parser("db", help="migrations and connection URL", description="database")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    command("url", "print the connection URL in use", cmd_db_url, dbsub)
    p = command("upgrade", "apply migrations (alembic upgrade)", cmd_db_upgrade, dbsub)
    p.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    add_option(p, "--embedding-dim", type=int, help="vector dimension fixed by the first migration")
    p = command("downgrade", "revert migrations (alembic downgrade)", cmd_db_downgrade, dbsub)
    p.add_argument("revision", help="target revision, e.g. base or -1")
    p = command("sql", "print the upgrade SQL for review (offline, no server)", cmd_db_sql, dbsub)
    p.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    add_option(p, "--embedding-dim", type=int, help="vector dimension fixed by the first migration")
    command("stop", "stop the embedded server", cmd_db_stop, dbsub)

    p = command("status", "queue depth, parked rows, live workers, coverage", cmd_status)
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


# Commands implemented in their own modules: each has configure(parser) and main(args) -> int,
# and imports heavy libraries (torch, transformers) inside functions so --help stays fast.
COMMANDS: list[tuple[str, str, str]] = [
    ("worker", "recdb.worker_cli", "encode queued items and users (LISTEN/NOTIFY + polling)"),
    ("load", "recdb.load", "bulk-load a dataset (movielens)"),
    ("demo", "recdb.demo", "the main job: MovieLens-100K end to end on the embedded default"),
    ("train", "recdb.train_cli", "train the sequence user encoder on the events, store it"),
    ("eval", "recdb.evaluate", "offline quality through rerank(): HR/NDCG/MRR@10, coverage"),
    ("bench", "recdb.bench", "performance figures in one run"),
    ("systemd-unit", "recdb.systemd", "print a systemd unit for the worker"),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _apply_common(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for operators; tracebacks with --log-level DEBUG
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"recdb: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
