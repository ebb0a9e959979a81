"""Ablations of the sequence encoder on ML-100K (the numbers in README "Quality").

Same split as `recdb eval` (chronological leave-one-out, early stopping on the validation
interaction, test interaction never trained on), scored offline over the full catalogue
with the user's history excluded (recdb.sequence.rank_metrics), so variants compare
without the rerank() priors. ``valid``/``test`` score the model over the whole history,
``*_fold`` the vectors the worker stores (recdb.sequence.fold.stored_vectors: the model over
all but the newest STORED_FOLD_EVENTS events, those folded in), which is what rerank()
serves. Text vectors are read from a database the worker encoded (`recdb eval` leaves one
behind: --database recdb_eval). Training runs on one thread, with no time budget.

    python scripts/sequence_ablation.py --variants hybrid,text,id,sampled,len20,len100
    python scripts/sequence_ablation.py --variants shipped --seeds 0,1,2
    python scripts/sequence_ablation.py --variants shipped --seeds 0,1,2 --refit
    python scripts/sequence_ablation.py --variants shipped --seeds 0,1,2 --ensemble
    python scripts/sequence_ablation.py --variants shipped --set '{"hidden": 128}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from recdb.datasets.movielens import read_movielens
from recdb.db import connect, database_url
from recdb.db.scratch import with_database
from recdb.sequence import TrainConfig, rank_metrics, train
from recdb.sequence.data import read
from recdb.sequence.fold import STORED_FOLD_EVENTS, stored_vectors
from recdb.tools.eval import metrics

# The recipe before issue #18 (max_len 50, constant lr 2e-3, patience 10, temperature 0.2):
# what the first rows of README "Quality"'s ablation table vary.
BEFORE_18 = {"max_len": 50, "lr": 2e-3, "lr_schedule": "constant", "warmup_epochs": 0,
             "patience": 10, "epochs": 200, "temperature": 0.2}  # fmt: skip
VARIANTS = {
    "shipped": {},  # TrainConfig() as it is
    "hybrid": BEFORE_18,
    "text": {**BEFORE_18, "item_repr": "text"},
    "id": {**BEFORE_18, "item_repr": "id"},
    "sampled": {**BEFORE_18, "loss": "sampled", "negatives": 256},
    "len20": {**BEFORE_18, "max_len": 20},
    "len100": {**BEFORE_18, "max_len": 100},
    "no-value-gap": {**BEFORE_18, "time_gaps": False, "value_bins": ()},
}


def _vectors(
    model, ids, text, histories, *, fold: bool, events: int = STORED_FOLD_EVENTS
) -> tuple[np.ndarray, np.ndarray]:
    """(user vectors for ``histories``, item vectors): the worker's stored ones with fold
    (the newest ``events`` folded)."""
    vecs = model.item_vectors(ids, text)
    if fold:
        return stored_vectors(model, histories, (ids, vecs), {}, events), vecs
    return model.user_vectors(histories, (ids, vecs)), vecs


def _rank(users: np.ndarray, items: np.ndarray, exclude, targets) -> dict[str, float]:
    return rank_metrics(torch.from_numpy(users), torch.from_numpy(items), exclude, targets, 10)


def _score(model, ids, text, histories, exclude, targets, *, fold: bool) -> dict[str, float]:
    """NDCG/HR@10 of the model's vectors for ``histories`` (the worker's stored ones: fold)."""
    return _rank(*_vectors(model, ids, text, histories, fold=fold), exclude, targets)


def _ensemble(parts: list[tuple[np.ndarray, np.ndarray]], exclude, targets) -> dict[str, float]:
    """The seeds' models as one: each model's unit vectors side by side, scaled by
    1/sqrt(n), so a dot product is the mean of the models' cosines (what one vector
    column of n x dim / n dimensions would serve)."""
    scale = np.float32(1 / np.sqrt(len(parts)))
    users = np.concatenate([u for u, _ in parts], axis=1) * scale
    items = np.concatenate([i for _, i in parts], axis=1) * scale
    return _rank(users.astype(np.float32), items.astype(np.float32), exclude, targets)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--database", default="recdb_eval")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--set", default="{}", help="JSON TrainConfig overrides for every variant")
    ap.add_argument("--json")
    ap.add_argument(
        "--refit",
        action="store_true",
        help="also retrain from scratch on train + validation for the epochs validation "
        "chose, and score that model on test (README Quality: not adopted)",
    )
    ap.add_argument(
        "--ensemble",
        action="store_true",
        help="also score the seeds' models as one ensemble, the mean of their cosines "
        "(README Quality: not adopted)",
    )
    ap.add_argument(
        "--fold-events",
        default="",
        help="also score the stored vectors with these numbers of newest events folded "
        "(comma-separated; the worker folds STORED_FOLD_EVENTS)",
    )
    args = ap.parse_args()
    extra = json.loads(args.set)
    _, ratings = read_movielens(None)
    splits = metrics.chronological_leave_one_out(
        (r.user_id, i, float(r.timestamp)) for i, r in enumerate(ratings)
    )
    with connect(with_database(database_url(), args.database)) as conn:
        data = read(conn)
    ids, text = data.item_ids, data.text
    row = {i: n for n, i in enumerate(ids)}

    def ev(i: int) -> tuple:
        r = ratings[i]
        return (r.item_id, "rate", float(r.rating), float(r.timestamp))

    seqs = {u: [ev(i) for i in s.train] for u, s in splits.items() if s.train}
    valid = {u: ratings[s.valid].item_id for u, s in splits.items() if s.valid is not None}
    test_users = sorted(u for u, s in splits.items() if s.test is not None)
    hist = {u: [ev(i) for i in (*splits[u].train, splits[u].valid)] for u in test_users}
    exclude = [np.unique([row[e[0]] for e in hist[u]]) for u in test_users]
    targets = np.array([row[ratings[splits[u].test].item_id] for u in test_users])
    val_users = sorted(u for u in valid if u in seqs)
    val_exclude = [np.unique([row[e[0]] for e in seqs[u]]) for u in val_users]
    val_targets = np.array([row[valid[u]] for u in val_users])
    out = {}
    th = [hist[u] for u in test_users]
    vh = [seqs[u] for u in val_users]
    for name in args.variants.split(","):
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            over = {"threads": 1, "time_budget_s": None, "seed": seed, **VARIANTS[name], **extra}
            cfg = dataclasses.replace(TrainConfig(), **over)
            t0 = time.perf_counter()
            model = train(seqs, valid, (ids, text), cfg, progress=False)
            secs = time.perf_counter() - t0
            for key, hs, fold in (("valid", vh, False), ("valid_fold", vh, True),
                                  ("test", th, False), ("test_fold", th, True)):  # fmt: skip
                parts.setdefault(key, []).append(_vectors(model, ids, text, hs, fold=fold))
            plain = _rank(*parts["test"][-1], exclude, targets)
            folded = _rank(*parts["test_fold"][-1], exclude, targets)
            val_fold = _rank(*parts["valid_fold"][-1], val_exclude, val_targets)
            out[f"{name}/{seed}"] = r = {
                "valid_ndcg@10": round(model.metrics["valid_ndcg@10"], 4),
                "valid_fold_ndcg@10": round(val_fold["ndcg@10"], 4),
                "test_ndcg@10": round(plain["ndcg@10"], 4),
                "test_hr@10": round(plain["hr@10"], 4),
                "test_fold_ndcg@10": round(folded["ndcg@10"], 4),
                "test_fold_hr@10": round(folded["hr@10"], 4),
                "epochs": model.metrics["epochs"],
                "best_epoch": model.metrics["best_epoch"],
                "seconds_per_epoch": round(model.metrics["seconds_per_epoch"], 2),
                "train_seconds": round(secs, 1),
            }
            if args.refit:
                # Train + validation interactions, the epochs validation chose, no early
                # stopping (no validation left): the test interaction is still never seen.
                rcfg = dataclasses.replace(cfg, epochs=max(1, model.metrics["best_epoch"]))
                rseqs = {u: hist.get(u, s) for u, s in seqs.items()}
                t0 = time.perf_counter()
                refit = train(rseqs, {}, (ids, text), rcfg, progress=False)
                rp = _score(refit, ids, text, th, exclude, targets, fold=False)
                rf = _score(refit, ids, text, th, exclude, targets, fold=True)
                r.update(
                    {
                        "refit_test_ndcg@10": round(rp["ndcg@10"], 4),
                        "refit_test_hr@10": round(rp["hr@10"], 4),
                        "refit_test_fold_ndcg@10": round(rf["ndcg@10"], 4),
                        "refit_test_fold_hr@10": round(rf["hr@10"], 4),
                        "refit_seconds": round(time.perf_counter() - t0, 1),
                    }
                )
            for k in (int(x) for x in args.fold_events.split(",") if x):
                vf = _rank(*_vectors(model, ids, text, vh, fold=True, events=k), val_exclude,
                           val_targets)  # fmt: skip
                tf = _rank(*_vectors(model, ids, text, th, fold=True, events=k), exclude, targets)
                r[f"valid_fold{k}_ndcg@10"] = round(vf["ndcg@10"], 4)
                r[f"test_fold{k}_ndcg@10"] = round(tf["ndcg@10"], 4)
            print(name, seed, r, flush=True)
        if args.ensemble and len(parts["test"]) > 1:
            r = {}
            split = {"valid": (val_exclude, val_targets), "test": (exclude, targets)}
            for key, vecs in parts.items():
                m = _ensemble(vecs, *split[key.split("_")[0]])
                r[f"{key}_ndcg@10"] = round(m["ndcg@10"], 4)
                r[f"{key}_hr@10"] = round(m["hr@10"], 4)
            out[f"{name}/ensemble"] = r
            print(name, "ensemble", r, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
