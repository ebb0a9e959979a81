"""The training job behind `recdb train`: fit the sequence user encoder on the events in
the database, store it in the model registry, and activate it when it beats the model in service.

Split: each user's last event is the validation interaction (early stopping and the
comparison with the active model), everything before it is training data. The model in
service is re-scored on the same split, so "beats" compares like with like.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from recdb.config import FULL_SOFTMAX_MAX_ITEMS

log = logging.getLogger(__name__)


def choose_loss(requested: str, n_items: int) -> str:
    """``auto``: full softmax (better on ML-100K) while the catalogue is small enough."""
    if requested != "auto":
        return requested
    return "full" if n_items <= FULL_SOFTMAX_MAX_ITEMS else "sampled"


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
    from recdb.db.sqlfiles import query
    from recdb.encoders import resolve_device
    from recdb.sequence import activation, registry, train, validation_metrics
    from recdb.sequence.data import hold_out_last, read
    from recdb.sequence.train import validation_sample

    started = time.perf_counter()
    key = f"ndcg@{cfg.eval_k}"
    with connect(url, application_name="recdb train") as conn:
        data = read(conn)
        seqs, valid = hold_out_last(data.histories, set(data.item_ids))
        if loss is not None:  # "auto" needs the catalogue size
            cfg = dataclasses.replace(cfg, loss=choose_loss(loss, len(data.item_ids)))
        # The new model and the one in service are compared on the same (capped) users.
        valid = validation_sample(valid, cfg, len(data.item_ids))
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
        queued = 0
        if do:
            # Staged outside the lock (the worker keeps encoding meanwhile); the switch
            # checks that no other activation came in between.
            queued = activation.activate(
                conn, model_id, expect_active=now_active, progress=progress
            ).requeued
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
