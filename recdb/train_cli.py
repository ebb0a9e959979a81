"""`recdb train`: fit the sequence user encoder on the events in the database, store it in
the model registry, and activate it when it beats the model in service.

Split: each user's last event is the validation interaction (early stopping and the
comparison with the active model), everything before it is training data. The model in
service is re-scored on the same split, so "beats" compares like with like.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# 15 minutes is the promise for ML-100K on 2 CPU cores; stop early enough to store it.
DEFAULT_TIME_BUDGET_S = 840.0
# Full softmax scores every target against the whole catalogue: (batch x len) x items
# logits, ~2.5 GB per step at 100k items. Above this many items, sampled softmax.
FULL_SOFTMAX_MAX_ITEMS = 20_000


def choose_loss(requested: str, n_items: int) -> str:
    """``auto``: full softmax (better on ML-100K) while the catalogue is small enough."""
    if requested != "auto":
        return requested
    return "full" if n_items <= FULL_SOFTMAX_MAX_ITEMS else "sampled"


def configure(parser: argparse.ArgumentParser) -> None:
    from recdb.cli import add_option

    add_option(
        parser,
        "--epochs",
        env_var="RECDB_TRAIN_EPOCHS",
        type=int,
        default=200,
        help="maximum epochs",
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
        default=DEFAULT_TIME_BUDGET_S,
        help="stop training (keeping the best epoch) before this many seconds",
    )
    add_option(
        parser,
        "--max-len",
        env_var="RECDB_TRAIN_MAX_LEN",
        type=int,
        default=50,
        help="events per user the model reads",
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


@dataclasses.dataclass
class TrainResult:
    model_id: int
    activated: bool
    reason: str
    valid_ndcg: float | None
    active_before: int | None
    active_before_ndcg: float | None
    items_queued: int
    epochs: int
    best_epoch: int
    seconds_per_epoch: float
    seconds: float
    users: int
    events: int
    items: int
    watermark: int
    device: str

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_and_register(
    url: str | None,
    cfg: Any,
    *,
    activate: bool | None = None,
    progress: bool = True,
    loss: str | None = None,
) -> TrainResult:
    """Train on the database's events, store the model, activate it when warranted.

    ``activate``: True = always, False = never, None = only when its validation NDCG@k
    beats the active model's on the same split (or when no model is active).
    """
    from recdb.db import connect
    from recdb.encoders import resolve_device
    from recdb.sequence import registry, train, validation_metrics
    from recdb.sequence.data import hold_out_last, read
    from recdb.sqlfiles import query

    started = time.perf_counter()
    key = f"ndcg@{cfg.eval_k}"
    with connect(url, application_name="recdb train") as conn:
        data = read(conn)
        seqs, valid = hold_out_last(data.histories, set(data.item_ids))
        if loss is not None:  # "auto" needs the catalogue size
            cfg = dataclasses.replace(cfg, loss=choose_loss(loss, len(data.item_ids)))
        log.info(
            "training on %d users, %d events, %d items (watermark event %d), %d validation users",
            len(seqs), data.n_events, len(data.item_ids), data.watermark, len(valid),
        )  # fmt: skip
        model = train(seqs, valid, (data.item_ids, data.text), cfg, progress=progress)
        new_score = model.metrics.get(f"valid_{key}")
        before = registry.active(conn)
        before_score, not_comparable = None, None
        if before is not None:
            try:
                old = registry.load(conn, before)
                before_score = validation_metrics(
                    old, seqs, valid, (data.item_ids, data.text), cfg.eval_k
                )[key]
            except Exception as exc:  # reported; the decision below accounts for it
                not_comparable = f"the active model {before} could not be scored ({exc})"
        conn.rollback()
        with conn.transaction():
            # Serialise with activations (recdb.activate_model takes the same lock): a model
            # activated while we trained is not replaced on the strength of a stale comparison.
            conn.execute(query("queries/models.sql", "activation_lock"))
            model_id = registry.save(conn, model, data.watermark)
            now_active = registry.active(conn)
            shown = "n/a" if new_score is None else f"{new_score:.4f}"
            manual = f"activate it with --activate or SELECT recdb.activate_model({model_id})"
            if activate is False:
                do, reason = False, "--no-activate"
            elif activate:
                do, reason = True, "--activate"
            elif now_active != before:
                do, reason = (
                    False,
                    (f"model {now_active} was activated while training; compare, then {manual}"),
                )
            elif before is None:
                do, reason = True, "no model was active"
            elif not_comparable:
                do, reason = False, f"{not_comparable}; {manual}"
            elif new_score is not None and before_score is not None and new_score > before_score:
                do, reason = True, f"valid {key} {shown} > {before_score:.4f} (active)"
            else:
                do, reason = False, (
                    f"valid {key} {shown} does not beat the active model {before} "
                    f"({before_score:.4f}); {manual}"
                )  # fmt: skip
            queued = registry.activate(conn, model_id) if do else 0
    m = model.metrics
    return TrainResult(
        model_id=model_id,
        activated=do,
        reason=reason,
        valid_ndcg=new_score,
        active_before=before,
        active_before_ndcg=before_score,
        items_queued=queued,
        epochs=int(m["epochs"]),
        best_epoch=int(m["best_epoch"]),
        seconds_per_epoch=round(float(m["seconds_per_epoch"]), 2),
        seconds=round(time.perf_counter() - started, 1),
        users=len(seqs),
        events=data.n_events,
        items=len(data.item_ids),
        watermark=data.watermark,
        device=str(resolve_device(cfg.device)),
    )


def main(args: argparse.Namespace) -> int:
    from recdb.db import database_url
    from recdb.sequence import TrainConfig

    if args.activate and args.no_activate:
        print("recdb train: --activate and --no-activate exclude each other", file=sys.stderr)
        return 2
    cfg = TrainConfig(
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        max_len=args.max_len,
        time_budget_s=args.time_budget,
        threads=args.threads,
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
        print(f"activated ({r.reason}); {r.items_queued} items queued for the worker")
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
    from recdb.sqlfiles import query

    with connect(autocommit=True, application_name="recdb train") as conn:
        row = conn.execute(query("queries/train.sql", "covisit_weight")).fetchone()
    if row and row[0] > 2 * MODEL_COVISIT_WEIGHT:
        print(
            f"hint: recdb.settings.covisit_weight is {row[0]:g}; with a trained model "
            f"{MODEL_COVISIT_WEIGHT:g} ranked better on MovieLens validation: "
            f"UPDATE recdb.settings SET covisit_weight = {MODEL_COVISIT_WEIGHT:g}"
        )
