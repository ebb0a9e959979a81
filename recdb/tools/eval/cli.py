"""`recdb eval`: options, the table printed at the end, JSON and the plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from recdb.cli.options import add_movielens_path_option, add_option
from recdb.datasets.movielens import MovieLensNotFound
from recdb.tools.eval import (
    DEFAULT_DATABASE,
    DEFAULT_FRACTION,
    DEFAULT_PRESET,
    KNOB_PRESETS,
    cold_database,
    format_cold_table,
    format_table,
    resolve_knobs,
    run_cold_items,
    run_evaluation,
    write_plot,
)
from recdb.tools.eval.fresh import format_table as format_fresh_table
from recdb.tools.eval.sasrec_ce import DEFAULT_GRID, SasrecCeConfig, format_grid, parse_grid


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--json",
        metavar="PATH",
        env_var="RECDB_EVAL_JSON",
        help="write the results as JSON here",
    )
    add_option(
        parser,
        "--plot",
        metavar="PATH",
        env_var="RECDB_EVAL_PLOT",
        help="write a PNG bar chart here",
    )
    add_option(
        parser,
        "--users",
        type=int,
        env_var="RECDB_EVAL_USERS",
        help="score a seeded sample of N users (default: all)",
    )
    add_option(
        parser,
        "--seed",
        type=int,
        default=0,
        env_var="RECDB_EVAL_SEED",
        help="seed of the user sample",
    )
    add_option(
        parser,
        "--encoders",
        env_var="RECDB_EVAL_ENCODERS",
        help="comma-separated user encoders (default: all the project has)",
    )
    add_option(
        parser,
        "--knobs",
        default=DEFAULT_PRESET,
        env_var="RECDB_EVAL_KNOBS",
        help=f"ranking knobs set in the eval database: a preset "
        f"({', '.join(KNOB_PRESETS)}) or a JSON file",
    )
    add_movielens_path_option(parser)
    add_option(
        parser,
        "--eval-database",
        default=DEFAULT_DATABASE,
        help="database created (dropped first) on the server for this run",
    )
    add_option(parser, "--device", default="auto", help="auto, cpu or cuda")
    add_option(
        parser,
        "--threads",
        type=int,
        default=2,
        env_var="RECDB_EVAL_THREADS",
        help="connections calling rerank() in parallel",
    )
    add_option(
        parser,
        "--no-validation",
        flag=True,
        env_var="RECDB_EVAL_NO_VALIDATION",
        help="skip the validation phase (faster; no val numbers)",
    )
    add_option(
        parser,
        "--fresh",
        type=int,
        default=0,
        metavar="N",
        env_var="RECDB_EVAL_FRESH",
        help="also score each encoder with every user's newest N events stale, folded by "
        "rerank() and re-encoded (test phase; 0: off)",
    )
    add_option(
        parser,
        "--sequence-seeds",
        type=int,
        default=1,
        metavar="N",
        env_var="RECDB_EVAL_SEQUENCE_SEEDS",
        help="train the sequence encoder with N seeds, serve and score each through "
        "rerank(), report the test mean ± std (the row is the first seed's; each extra "
        "seed costs one more training)",
    )
    add_option(
        parser,
        "--sasrec-ce-seeds",
        type=int,
        default=SasrecCeConfig.seeds,
        metavar="N",
        env_var="RECDB_EVAL_SASREC_CE_SEEDS",
        help="baseline sasrec-ce (SASRec with full-softmax cross-entropy, item IDs): train "
        "the config chosen on validation with N seeds, report the test mean ± std (the "
        "slowest part of the run on CPU; 0: skip it)",
    )
    add_option(
        parser,
        "--sasrec-ce-grid",
        default=format_grid(DEFAULT_GRID),
        metavar="LEN:DROPOUT,...",
        env_var="RECDB_EVAL_SASREC_CE_GRID",
        help="sasrec-ce configs (max_len:dropout) chosen among on validation NDCG@10",
    )
    add_option(
        parser,
        "--sasrec-ce-max-epochs",
        type=int,
        default=SasrecCeConfig.max_epochs,
        metavar="N",
        env_var="RECDB_EVAL_SASREC_CE_MAX_EPOCHS",
        help="epoch cap of each sasrec-ce training (early stopping on validation NDCG@10 "
        f"after {SasrecCeConfig.patience} epochs without progress)",
    )
    add_option(
        parser,
        "--cold-items",
        type=float,
        default=DEFAULT_FRACTION,
        metavar="FRACTION",
        env_var="RECDB_EVAL_COLD_ITEMS",
        help="then hold out every event of the newest FRACTION of items (by first "
        "interaction) and score how rerank() brings them to the users who rated them, in a "
        "database of its own (<eval-database>_cold); 0: off",
    )
    add_option(
        parser,
        "--cold-only",
        flag=True,
        env_var="RECDB_EVAL_COLD_ONLY",
        help="run only the --cold-items protocol, not the main one",
    )
    add_option(
        parser,
        "--markdown",
        metavar="RESULT_JSON",
        env_var="RECDB_EVAL_MARKDOWN",
        help="print the markdown report (the README's tables) of a saved --json result and "
        "exit (no database, no data)",
    )
    add_option(parser, "--no-progress", flag=True, help="no progress bars")


def sasrec_ce_config(args: argparse.Namespace) -> SasrecCeConfig | None:
    """The sasrec-ce baseline the options ask for; None with --sasrec-ce-seeds 0. Raises
    ValueError on a bad value."""
    if args.sasrec_ce_seeds < 0:
        raise ValueError(f"--sasrec-ce-seeds must be >= 0 (0: off), got {args.sasrec_ce_seeds}")
    if args.sasrec_ce_seeds == 0:
        return None
    try:
        grid = parse_grid(args.sasrec_ce_grid)
    except ValueError as exc:
        raise ValueError(f"--sasrec-ce-grid: {exc}") from None
    if args.sasrec_ce_max_epochs < 1:
        raise ValueError(f"--sasrec-ce-max-epochs must be >= 1, got {args.sasrec_ce_max_epochs}")
    return SasrecCeConfig(
        seeds=args.sasrec_ce_seeds,
        grid=grid,
        max_epochs=args.sasrec_ce_max_epochs,
        device=args.device,
    )


def main(args: argparse.Namespace) -> int:
    if args.markdown:
        return _markdown(args.markdown)
    from recdb.datasets.movielens import read_movielens
    from recdb.db import database_url

    try:
        items, ratings = read_movielens(args.path)
    except MovieLensNotFound as exc:
        print(f"recdb eval: {exc}", file=sys.stderr)
        return 2
    if args.fresh < 0:
        print(f"recdb eval: --fresh must be >= 0 (0: off), got {args.fresh}", file=sys.stderr)
        return 2
    if not 0 <= args.cold_items < 1 or (args.cold_only and not args.cold_items):
        print(
            f"recdb eval: --cold-items must be in [0, 1) (0: off), and above 0 with "
            f"--cold-only; got {args.cold_items}",
            file=sys.stderr,
        )
        return 2
    if args.sequence_seeds < 1:
        print(f"recdb eval: --sequence-seeds must be >= 1, got {args.sequence_seeds}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        sasrec_ce = sasrec_ce_config(args)
    except ValueError as exc:
        print(f"recdb eval: {exc}", file=sys.stderr)
        return 2
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()] if args.encoders else None
    if args.cold_only:
        return _outputs(args, {"cold_items": _cold_items(args, items, ratings, encoders)})
    result = run_evaluation(
        database_url(),
        items,
        ratings,
        encoders=encoders,
        database=args.eval_database,
        users=args.users,
        seed=args.seed,
        knobs=resolve_knobs(args.knobs),
        device=args.device,
        validate=not args.no_validation,
        threads=args.threads,
        progress=not args.no_progress,
        fresh=args.fresh,
        sasrec_ce_config=sasrec_ce,
        sequence_seeds=args.sequence_seeds,
    )
    p = result["protocol"]
    print(
        f"\n{p['dataset']}: {p['users']} users, {p['items']} items, chronological "
        f"leave-one-out, full ranking, k={p['k']} (wall {p['timings_s']['wall']:.0f}s)"
    )
    print(format_table(result))
    if fresh_table := format_fresh_table(result):
        print(f"\n{fresh_table}")
    if args.cold_items:
        result["cold_items"] = _cold_items(args, items, ratings, encoders)
    return _outputs(args, result)


def _markdown(path: str) -> int:
    """--markdown: a saved run's README tables; no database, no data."""
    from recdb.tools.eval.markdown import markdown

    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"recdb eval: --markdown {path}: {exc}", file=sys.stderr)
        return 2
    print(markdown(result), end="")
    return 0


def _cold_items(
    args: argparse.Namespace, items: Any, ratings: Any, encoders: list[str] | None
) -> dict[str, Any]:
    """The --cold-items protocol (recdb.tools.eval.cold), its table printed."""
    from recdb.db import database_url

    cold = run_cold_items(
        database_url(),
        items,
        ratings,
        fraction=args.cold_items,
        encoders=encoders,
        database=cold_database(args.eval_database),
        knobs=resolve_knobs(args.knobs),
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
    )
    print(f"\n{format_cold_table(cold)}\n(wall {cold['protocol']['timings_s']['wall']:.0f}s)")
    return cold


def _outputs(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """--json and --plot."""
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        write_plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0
