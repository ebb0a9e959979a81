"""`recdb bench`: options and the report printed at the end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recdb.cli.options import add_option
from recdb.db import scratch
from recdb.tools.bench.config import DEFAULT_DB, ML100K, BenchConfig
from recdb.tools.bench.report import render, targets
from recdb.tools.bench.run import run_bench
from recdb.tools.bench.scale import ScaleConfig, run_scale
from recdb.tools.bench.scale_report import render_scale, write_scale_plot
from recdb.tools.bench.stats import parse_floats, parse_ints, parse_sizes


def _option(parser: argparse.ArgumentParser, option: str, **kwargs: Any) -> None:
    """An option of `recdb bench`: its default read from RECDB_BENCH_<OPTION> (named in
    --help), so a bench run is configurable from the environment alone."""
    name = option.lstrip("-").removeprefix("bench-")
    var = "RECDB_BENCH_" + name.replace("-", "_").upper()
    add_option(parser, option, env_var=var, **kwargs)


def configure(parser: argparse.ArgumentParser) -> None:
    _option(
        parser,
        "--sizes",
        default=",".join(str(s) for s in BenchConfig().sizes),
        help="bench sizes, comma-separated: catalog sizes (k/m suffixes ok; above 100k,"
        f" perturbed copies of the real vectors) and {ML100K} (the MovieLens-100K demo data,"
        " timed per user class, in a database of its own)",
    )
    _option(parser, "--users", type=int, default=5000, help="synthetic users with histories")
    _option(parser, "--clients", default="1,4", help="concurrent client counts")
    _option(
        parser, "--duration", type=float, default=8.0, help="seconds per concurrent-clients run"
    )
    _option(
        parser,
        "--queries",
        type=int,
        default=1000,
        help="sequential calls per size, per path (served, vector, raw HNSW) and repetition",
    )
    _option(
        parser,
        "--repeats",
        type=int,
        default=3,
        help="repetitions of each sequential latency figure, interleaved across paths;"
        " the reported percentiles are the median over repetitions",
    )
    _option(
        parser,
        "--class-queries",
        type=int,
        default=300,
        help=f"{ML100K}: calls per user class, per path and repetition",
    )
    _option(
        parser,
        "--event-rates",
        default="50,1000,3000",
        help="events/s of the freshness runs, comma-separated, one run each with a worker",
    )
    _option(
        parser,
        "--refresh-rates",
        default="1000,3000",
        help="event rates run a second time while the maintenance refreshes (popularity,"
        " co-visitation neighbours) run beside the worker (empty: none)",
    )
    _option(
        parser,
        "--freshness-duration",
        type=float,
        default=10.0,
        help="seconds of steady event load per freshness rate",
    )
    _option(parser, "--seed", type=int, default=0, help="catalog and user generator seed")
    _option(
        parser,
        "--bench-db",
        default=DEFAULT_DB,
        help=f"database created (dropped first) on the server for the bench; {ML100K} uses"
        f" <name>_{ML100K}",
    )
    _option(parser, "--keep", flag=True, help="keep the bench databases afterwards")
    _option(parser, "--device", default="cpu", help="device of the text model (cpu, cuda)")
    _option(parser, "--json", metavar="PATH", help="also write the result as JSON here")
    _option(
        parser,
        "--markdown",
        metavar="RESULT_JSON",
        help="print the markdown report of a saved --json result and exit (no database)",
    )
    _option(parser, "--no-progress", flag=True, help="no progress bars")
    _option(
        parser,
        "--soak",
        flag=True,
        help="instead of the figures: sustained events + rerank() calls with workers running"
        " for --duration seconds; reports errors, queue lag and rerank() p99 under load",
    )
    _option(parser, "--soak-event-rate", type=float, default=300.0, help="events/s during --soak")
    _option(
        parser,
        "--scale",
        flag=True,
        help="instead of the figures: the costs of a shop-shaped log at each of"
        " --scale-steps (import, maintenance, worker, live INSERTs, rerank() per user class,"
        " disk); items and users are a tenth of the events each",
    )
    _option(
        parser,
        "--scale-steps",
        default=",".join(str(n) for n in ScaleConfig().steps),
        help="--scale: events in the log at each step, comma-separated (k/m suffixes ok)",
    )
    _option(
        parser,
        "--scale-worker-users",
        type=int,
        default=ScaleConfig().worker_users,
        help="--scale: users the worker drains for the users/s figure",
    )
    _option(
        parser,
        "--scale-live-events",
        type=int,
        default=ScaleConfig().live_events,
        help="--scale: the log's newest events, written as single-row INSERTs while a worker"
        " runs; the incremental maintenance after them is timed",
    )
    _option(parser, "--plot", metavar="PATH", help="--scale: also write the log-log plot here")


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


def _scale(args: argparse.Namespace) -> int:
    cfg = ScaleConfig(
        steps=parse_ints(args.scale_steps),
        worker_users=args.scale_worker_users,
        live_events=args.scale_live_events,
        class_queries=args.class_queries,
        repeats=args.repeats,
        seed=args.seed,
        dbname=f"{args.bench_db}_scale",
        keep=args.keep,
        device=args.device,
        progress=not args.no_progress,
    )
    result = run_scale(cfg)
    print(render_scale(result), end="")
    if args.json:
        _write_json(args.json, result)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        write_scale_plot(result, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def markdown(path: str) -> str:
    """The report of a saved result, as the run printed it (targets recomputed when the
    file predates them)."""
    result = json.loads(Path(path).read_text(encoding="utf-8"))
    if "scale" in result:
        return render_scale(result)
    if "targets" not in result:
        result["targets"] = targets(result)
    return render(result)


def main(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown(args.markdown), end="")
        return 0
    if args.soak:
        return _soak(args)
    if args.scale:
        return _scale(args)
    cfg = BenchConfig(
        sizes=parse_sizes(args.sizes),
        users=args.users,
        clients=parse_ints(args.clients),
        duration=args.duration,
        queries=args.queries,
        repeats=args.repeats,
        class_queries=args.class_queries,
        event_rates=parse_floats(args.event_rates),
        refresh_rates=parse_floats(args.refresh_rates) if args.refresh_rates else [],
        freshness_duration=args.freshness_duration,
        seed=args.seed,
        dbname=args.bench_db,
        keep=args.keep,
        device=args.device,
        progress=not args.no_progress,
    )
    result = run_bench(cfg)
    print(render(result), end="")
    if args.json:
        _write_json(args.json, result)
        print(f"\nJSON written to {args.json}")
    return 0
