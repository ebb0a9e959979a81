"""What one content-prior refit costs on a large catalogue (README "How costs grow").

Builds a scratch database with N random unit item vectors, M of them with popularity
(the rest are brand new, listed in recdb.new_items), then times refit() three times
(fit on the sample, re-score the listed items) and prints the median. The HNSW index is
dropped first: the refit never reads it, and loading 10^6 vectors through it takes hours.

    RECDB_HOME=/tmp/x python scripts/content_prior_cost.py 1000000 900000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from recdb.db import connect, database_url, schema
from recdb.db.scratch import drop, recreate
from recdb.worker import content_prior

HNSW = (
    "SELECT x.indexrelid::regclass::text FROM pg_index x"
    " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam"
    " WHERE x.indrelid = 'recdb.items'::regclass AND a.amname = 'hnsw'"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("items", type=int)
    ap.add_argument("popular", type=int, help="items with popularity (the rest are new)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--database", default="recdb_prior_cost")
    args = ap.parse_args()
    url = recreate(database_url(), args.database)
    schema.upgrade(url, embedding_dim=args.dim)
    rng = np.random.default_rng(0)
    with connect(url, autocommit=True) as c:
        for (name,) in c.execute(HNSW).fetchall():
            c.execute(f"DROP INDEX {name}")
        copy = "COPY recdb.items (item_id, title, embedding) FROM STDIN (FORMAT BINARY)"
        with c.cursor() as cur, cur.copy(copy) as cp:
            cp.set_types(["int8", "text", "vector"])
            for start in range(0, args.items, 10_000):
                vs = rng.normal(size=(min(10_000, args.items - start), args.dim))
                vs = (vs / np.linalg.norm(vs, axis=1, keepdims=True)).astype(np.float32)
                for j, v in enumerate(vs):
                    cp.write_row((start + j + 1, f"item {start + j + 1}", v))
        c.execute(
            "INSERT INTO recdb.popularity (item_id, mass, counted)"
            " SELECT g, random(), 1 FROM generate_series(1, %s) g",
            (args.popular,),
        )
        c.execute(
            "INSERT INTO recdb.popularity_state (id, scale, zero_below) VALUES (true, 1, 0)"
            " ON CONFLICT (id) DO UPDATE SET scale = 1, zero_below = 0"
        )
        c.execute("VACUUM ANALYZE recdb.items, recdb.popularity, recdb.new_items")
        c.autocommit = False
        content_prior.refit(c, full=True)  # the list as the maintenance leaves it
        c.commit()
        took = []
        for _ in range(3):
            t0 = time.perf_counter()
            fitted = content_prior.refit(c)
            c.commit()
            took.append(time.perf_counter() - t0)
        listed = c.execute("SELECT count(*) FROM recdb.new_items").fetchone()[0]
    drop(database_url(), args.database)
    print(
        f"items {args.items}, with popularity {args.popular}, listed {listed}, fitted on"
        f" {fitted}: refit s {[round(t, 2) for t in took]}, median {statistics.median(took):.2f}"
    )


if __name__ == "__main__":
    main()
