"""rerank()'s knobs for the trained sequence encoder, chosen on the validation split.

The `recdb eval` protocol up to its validation phase (MovieLens-100K, chronological
leave-one-out, the training interactions loaded, the sequence model trained on them,
served and every user encoded once), then every knob set of the grid is written into
recdb.settings and all users are ranked through rerank(): validation NDCG@10 / HR@10 per
set. Knobs that only rerank() reads need no re-encoding, so a grid point costs one
ranking pass (~10 s), not a training. Test interactions are never loaded.

    python scripts/knob_sweep.py --grid '[{"covisit_weight": 0}, {"covisit_weight": 0.5}]'
"""

from __future__ import annotations

import argparse
import json
import time

from recdb.config import TRAIN_TIME_BUDGET_S
from recdb.datasets.loader import insert_events, movie_rows, upsert_items
from recdb.datasets.movielens import rating_events, read_movielens
from recdb.db import connect, database_url, schema
from recdb.db.scratch import with_database
from recdb.db.sqlfiles import query
from recdb.encoders import TextEncoder
from recdb.sequence import TrainConfig
from recdb.tools.eval import metrics, scoring
from recdb.tools.eval.knobs import KNOB_PRESETS, apply_knobs, effective_knobs, encoder_settings
from recdb.tools.eval.protocol import K, phases, split_ratings
from recdb.tools.eval.run import EvalRun, fresh_database, item_vector_encoders
from recdb.worker import requeue_all_users


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", required=True, help="JSON list of recdb.settings overrides")
    ap.add_argument("--preset", default="tuned", help="the knobs every grid point starts from")
    ap.add_argument("--database", default="recdb_knob_sweep")
    ap.add_argument("--seed-offset", type=int, default=0, help="which training seed")
    ap.add_argument("--reuse", action="store_true", help="rank in the database as left")
    ap.add_argument("--set", default="{}", help="JSON TrainConfig overrides of the model")
    ap.add_argument("--json")
    args = ap.parse_args()
    grid = json.loads(args.grid)
    items, ratings = read_movielens(None)
    splits = split_ratings(ratings)
    users = sorted(u for u, s in splits.items() if s.test is not None)
    text = TextEncoder(device="cpu")
    if args.reuse:  # the database a previous run left: its model served, users encoded
        url = with_database(database_url(), args.database)
    else:
        url = fresh_database(database_url(), args.database)
        schema.upgrade(url, embedding_dim=text.dim)
    knobs = KNOB_PRESETS[args.preset]
    with connect(url, autocommit=True, application_name="knob sweep") as conn:
        run = EvalRun(url=url, conn=conn, ratings=ratings, splits=splits, users=users,
                      n_catalog=len({m.item_id for m in items}), k=K, knobs=knobs,
                      text_encoder=text, device="cpu", threads=2, progress=True,
                      sequence_config=TrainConfig(device="cpu", time_budget_s=TRAIN_TIME_BUDGET_S,
                                                  **json.loads(args.set)))  # fmt: skip
        phase, new = phases(ratings, splits, users, True)[0]
        if not args.reuse:
            apply_knobs(conn, knobs)
            run.base_settings = effective_knobs(conn)["settings"]
            with conn.transaction():
                upsert_items(conn, movie_rows(items))
            run.drain("items", "encode ")
            run.text_items = item_vector_encoders(conn)
            with conn.transaction():
                insert_events(conn, rating_events(ratings[i] for i in new), len(new))
                conn.execute(query("queries/eval.sql", "refresh_popularity_for_phase"))
            apply_knobs(conn, {"settings": encoder_settings(knobs, run.base_settings, "sequence")})
            run.serve_encoder("sequence", args.seed_offset)
            requeue_all_users(conn)
            run.drain("users", "valid sequence: ", user_encoder="sequence")
        # every point starts from every setting as served (not only the preset's own)
        not_knobs = ("event_retention", "max_future_skew", "exact_scan_below")
        served = {k: v for k, v in effective_knobs(conn)["settings"].items() if k not in not_knobs}
        out = []
        for point in grid:
            apply_knobs(conn, {"settings": {**served, **point}})
            t0 = time.perf_counter()
            ranked = scoring.rerank_rankings(url, users, K, threads=2)
            m = metrics.evaluate(
                {u: ranked.get(u, []) for u in phase.targets}, phase.targets, run.n_catalog, K
            )
            row = {"knobs": point, "valid_ndcg@10": round(m["ndcg@10"], 4),
                   "valid_hr@10": round(m["hr@10"], 4),
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            out.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
