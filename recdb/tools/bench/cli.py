"""`recdb bench`: options and the report printed at the end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recdb.cli.options import add_option
from recdb.db import scratch
from recdb.tools.bench.config import DEFAULT_DB, BenchConfig
from recdb.tools.bench.report import render
from recdb.tools.bench.run import run_bench
from recdb.tools.bench.stats import parse_ints


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--items",
        default="10000,100000",
        help="catalog sizes, comma-separated (k/m suffixes ok); sizes above 100k use "
        "perturbed copies of the real vectors",
    )
    add_option(parser, "--users", type=int, default=5000, help="synthetic users with histories")
    add_option(parser, "--clients", default="1,4", help="concurrent client counts")
    add_option(
        parser, "--duration", type=float, default=8.0, help="seconds per concurrent-clients run"
    )
    add_option(
        parser, "--queries", type=int, default=1000, help="sequential rerank() calls per size"
    )
    add_option(
        parser, "--event-rate", type=float, default=1000.0, help="events/s during the freshness run"
    )
    add_option(
        parser,
        "--low-event-rate",
        type=float,
        default=50.0,
        help="events/s of a second freshness run below the worker's saturation (0: skip)",
    )
    add_option(
        parser,
        "--freshness-duration",
        type=float,
        default=10.0,
        help="seconds of steady event load for freshness",
    )
    add_option(parser, "--seed", type=int, default=0, help="catalog and user generator seed")
    add_option(
        parser,
        "--bench-db",
        default=DEFAULT_DB,
        help="database created (dropped first) on the server for the bench",
    )
    add_option(parser, "--keep", flag=True, help="keep the bench database afterwards")
    add_option(parser, "--device", default="cpu", help="device of the text model (cpu, cuda)")
    add_option(parser, "--json", metavar="PATH", help="also write the result as JSON here")
    add_option(parser, "--no-progress", flag=True, help="no progress bars")
    add_option(
        parser,
        "--soak",
        flag=True,
        help="instead of the figures: sustained events + rerank() calls with workers running"
        " for --duration seconds; reports errors, queue lag and rerank() p99 under load",
    )
    add_option(
        parser, "--soak-event-rate", type=float, default=300.0, help="events/s during --soak"
    )


def _write_json(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")


def _soak(args: argparse.Namespace) -> int:
    from recdb.db import database_url, schema
    from recdb.tools import soak

    admin = database_url()
    url = scratch.recreate(admin, "recdb_soak")
    try:
        schema.upgrade(url)
        result = soak.run_soak(
            url,
            soak.SoakConfig(
                duration=args.duration, event_rate=args.soak_event_rate, seed=args.seed
            ),
        )
    finally:
        if not args.keep:
            scratch.drop(admin, "recdb_soak")
    print(soak.render(result))
    if args.json:
        _write_json(args.json, {"soak": result})
    return 0 if result["errors"] == 0 and result["queue_left"] == 0 else 1


def main(args: argparse.Namespace) -> int:
    if args.soak:
        return _soak(args)
    cfg = BenchConfig(
        sizes=parse_ints(args.items),
        users=args.users,
        clients=parse_ints(args.clients),
        duration=args.duration,
        queries=args.queries,
        event_rate=args.event_rate,
        low_event_rate=args.low_event_rate,
        freshness_duration=args.freshness_duration,
        seed=args.seed,
        dbname=args.bench_db,
        keep=args.keep,
        device=args.device,
        progress=not args.no_progress,
    )
    result = run_bench(cfg)
    print(render(result))
    if args.json:
        _write_json(args.json, result)
        print(f"\nJSON written to {args.json}")
    return 0
