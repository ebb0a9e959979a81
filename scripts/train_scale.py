"""`recdb train`'s training at catalogue scale (issue #13), on a synthetic log in memory.

Builds a shop-shaped log (Zipf item popularity, power-law user activity, at least 3 events
per user; unit random 384-d text vectors), holds out each user's last event as
`recdb train` does, and trains with the shipped TrainConfig on the path `recdb train`
picks for that catalogue (sampled softmax past FULL_SOFTMAX_MAX_ITEMS) and its CPU time
budget. Prints one JSON line: time to build, train, per epoch, epochs run, peak RSS.
The database read is not included (see README "Performance model").

    python scripts/train_scale.py --items 1e6 --events 1e7 --users 1e6
    python scripts/train_scale.py --items 1e6 --events 2e5 --users 12800 --set '{"epochs": 1}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time

import numpy as np

from recdb.config import TRAIN_TIME_BUDGET_S
from recdb.sequence import TrainConfig, train
from recdb.sequence.job import choose_loss


def synthetic_log(n_items: int, n_events: int, n_users: int, seed: int = 0):
    """(sequences without their last event, last item per user, item ids, text matrix)."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((n_items, 384), dtype=np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    act = np.minimum(rng.zipf(1.6, n_users), 10_000).astype(np.float64)
    act = np.maximum(3, act * (n_events / act.sum())).astype(np.int64)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = (rng.choice(n_items, int(act.sum()), p=pop / pop.sum()) + 1).tolist()
    seqs, valid, start = {}, {}, 0
    for user, stop in enumerate(np.cumsum(act).tolist()):
        events = [(items[j], "view", None, float(j)) for j in range(start, stop)]
        valid[user] = events.pop()[0]
        seqs[user] = events
        start = stop
    return seqs, valid, list(range(1, n_items + 1)), text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=float, default=1e6)
    ap.add_argument("--events", type=float, default=1e7)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--budget", type=float, default=TRAIN_TIME_BUDGET_S)
    ap.add_argument("--set", default="{}", help="JSON TrainConfig overrides")
    args = ap.parse_args()
    t0 = time.perf_counter()
    seqs, valid, ids, text = synthetic_log(int(args.items), int(args.events), int(args.users))
    built = time.perf_counter() - t0
    n_events = sum(len(s) for s in seqs.values()) + len(valid)
    print(f"log: {n_events:,} events, {len(seqs):,} users, {len(ids):,} items, {built:.0f} s",
          flush=True)  # fmt: skip
    over = {"loss": choose_loss("auto", len(ids)), "time_budget_s": args.budget,
            **json.loads(args.set)}  # fmt: skip
    cfg = dataclasses.replace(TrainConfig(), **over)
    t0 = time.perf_counter()
    model = train(seqs, valid, (ids, text), cfg, progress=True)
    m = model.metrics
    out = {
        "events": n_events, "users": len(seqs), "items": len(ids),
        "build_seconds": round(built, 1),
        "train_seconds": round(time.perf_counter() - t0, 1),
        **{k: m[k] for k in ("epochs", "best_epoch", "stopped", "windows", "windows_per_epoch",
                             "valid_users", "fold_seconds")},
        "seconds_per_epoch": round(m["seconds_per_epoch"], 1),
        "valid_ndcg@10": m["valid_ndcg@10"],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 1),
        "config": over,
    }  # fmt: skip
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
