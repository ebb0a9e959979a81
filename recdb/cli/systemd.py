"""`recdb systemd-unit`: print a unit file for the worker."""

from __future__ import annotations

import argparse

from recdb.cli.options import add_option
from recdb.worker.systemd import unit_text


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--exec-start", help="command that runs recdb (default: this install)")
    add_option(
        parser,
        "--env-file",
        default="/etc/recdb/worker.env",
        help="EnvironmentFile holding RECDB_DATABASE_URL etc.",
    )
    add_option(parser, "--user", default="recdb", help="system user the worker runs as")
    add_option(parser, "--watchdog-sec", type=int, default=60, help="WatchdogSec")


def main(args: argparse.Namespace) -> int:
    print(unit_text(args.exec_start, args.env_file, args.user, args.watchdog_sec), end="")
    return 0
