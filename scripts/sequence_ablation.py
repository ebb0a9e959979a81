"""Ablations of the sequence encoder on ML-100K (the numbers in README "Quality").

Same split as `recdb eval` (chronological leave-one-out, early stopping on the validation
interaction, test interaction never trained on), scored offline over the full catalogue
with the user's history excluded (recdb.sequence.rank_metrics), so variants compare
without the rerank() priors. Text vectors are read from a database the worker encoded
(`recdb eval` leaves one behind: --database recdb_eval).

    python scripts/sequence_ablation.py --variants hybrid,text,id,sampled,len20,len100
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
from recdb.tools.eval import metrics

VARIANTS = {
    "hybrid": {},
    "text": {"item_repr": "text"},
    "id": {"item_repr": "id"},
    "sampled": {"loss": "sampled", "negatives": 256},
    "len20": {"max_len": 20},
    "len100": {"max_len": 100},
    "no-value-gap": {"time_gaps": False, "value_bins": ()},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--database", default="recdb_eval")
    ap.add_argument("--json")
    args = ap.parse_args()
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
    out = {}
    for name in args.variants.split(","):
        cfg = dataclasses.replace(TrainConfig(), **VARIANTS[name])
        t0 = time.perf_counter()
        model = train(seqs, valid, (ids, text), cfg, progress=False)
        secs = time.perf_counter() - t0
        vecs = model.item_vectors(ids, text)
        uvecs = model.user_vectors([hist[u] for u in test_users], (ids, vecs))
        exclude = [np.unique([row[e[0]] for e in hist[u]]) for u in test_users]
        targets = np.array([row[ratings[splits[u].test].item_id] for u in test_users])
        m = rank_metrics(torch.from_numpy(uvecs), torch.from_numpy(vecs), exclude, targets, 10)
        out[name] = {
            "valid_ndcg@10": round(model.metrics["valid_ndcg@10"], 4),
            "test_ndcg@10": round(m["ndcg@10"], 4),
            "test_hr@10": round(m["hr@10"], 4),
            "epochs": model.metrics["epochs"],
            "seconds_per_epoch": round(model.metrics["seconds_per_epoch"], 2),
            "train_seconds": round(secs, 1),
        }
        print(name, out[name], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
