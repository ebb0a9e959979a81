"""`recdb train`: options, the run's summary and the co-visitation hint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recdb.cli.options import add_option
from recdb.config import FULL_SOFTMAX_MAX_ITEMS, TRAIN_TIME_BUDGET_S


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--epochs",
        env_var="RECDB_TRAIN_EPOCHS",
        type=int,
        default=None,
        help="epochs (default: the training recipe's, recdb.sequence.TrainConfig; the "
        "learning rate decays over them)",
    )
    add_option(parser, "--device", default="auto", help="auto (cuda if present), cpu or cuda")
    add_option(
        parser,
        "--activate",
        env_var="RECDB_TRAIN_ACTIVATE",
        flag=True,
        help="activate the new model even if it does not beat the active one",
    )
    add_option(
        parser,
        "--no-activate",
        env_var="RECDB_TRAIN_NO_ACTIVATE",
        flag=True,
        help="store the model but never activate it",
    )
    add_option(
        parser,
        "--seed",
        env_var="RECDB_TRAIN_SEED",
        type=int,
        default=0,
        help="random seed (same seed, same model)",
    )
    add_option(
        parser,
        "--time-budget",
        env_var="RECDB_TRAIN_TIME_BUDGET",
        type=float,
        default=TRAIN_TIME_BUDGET_S,
        help="stop training (keeping the best epoch) before this many seconds",
    )
    add_option(
        parser,
        "--max-len",
        env_var="RECDB_TRAIN_MAX_LEN",
        type=int,
        default=None,
        help="events per user the model reads (default: recdb.sequence.TrainConfig's)",
    )
    add_option(
        parser,
        "--threads",
        env_var="RECDB_TRAIN_THREADS",
        type=int,
        default=None,
        help="CPU threads for torch (default: all)",
    )
    add_option(
        parser,
        "--loss",
        env_var="RECDB_TRAIN_LOSS",
        default="auto",
        choices=("auto", "full", "sampled"),
        help=f"next-item loss (auto: full softmax up to {FULL_SOFTMAX_MAX_ITEMS:,} items, "
        "sampled above)",
    )
    add_option(
        parser,
        "--json",
        env_var="RECDB_TRAIN_JSON",
        metavar="PATH",
        help="write the run's summary as JSON here",
    )
    add_option(parser, "--no-progress", flag=True, help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from recdb.db import database_url
    from recdb.sequence import TrainConfig
    from recdb.sequence.job import train_and_register

    if args.activate and args.no_activate:
        print("recdb train: --activate and --no-activate exclude each other", file=sys.stderr)
        return 2
    recipe = {"epochs": args.epochs, "max_len": args.max_len}
    cfg = TrainConfig(
        device=args.device,
        seed=args.seed,
        time_budget_s=args.time_budget,
        threads=args.threads,
        **{k: v for k, v in recipe.items() if v is not None},
    )
    activate = True if args.activate else False if args.no_activate else None
    r = train_and_register(
        database_url(), cfg, activate=activate, progress=not args.no_progress, loss=args.loss
    )
    nd = "-" if r.valid_ndcg is None else f"{r.valid_ndcg:.4f}"
    print(
        f"model {r.model_id}: {r.users} users, {r.events} events, {r.items} items on {r.device}; "
        f"{r.epochs} epochs (best {r.best_epoch}, {r.seconds_per_epoch:.1f} s/epoch), "
        f"{r.seconds:.0f} s; valid ndcg@10 {nd}"
    )
    if r.activated:
        print(
            f"activated ({r.reason}): every item switched at once, "
            f"{r.items_queued} changed while staged queued, every user queued for the worker"
        )
        _hint_covisit_weight()
    else:
        print(f"stored, not activated: {r.reason}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(r.as_json(), indent=2) + "\n")
    return 0


# Validation NDCG@10 on ML-100K peaks near this with a trained model (README, Quality).
MODEL_COVISIT_WEIGHT = 0.25


def _hint_covisit_weight() -> None:
    """The co-visitation weight that suits the mean encoder over-rules a trained model."""
    from recdb.db import connect
    from recdb.db.sqlfiles import query

    with connect(autocommit=True, application_name="recdb train") as conn:
        row = conn.execute(query("queries/train.sql", "covisit_weight")).fetchone()
    if row and row[0] > 2 * MODEL_COVISIT_WEIGHT:
        print(
            f"hint: recdb.settings.covisit_weight is {row[0]:g}; with a trained model "
            f"{MODEL_COVISIT_WEIGHT:g} ranked better on MovieLens validation: "
            f"UPDATE recdb.settings SET covisit_weight = {MODEL_COVISIT_WEIGHT:g}"
        )
