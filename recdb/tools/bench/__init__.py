"""`recdb bench`: performance figures of the whole product, measured in one run.

Everything runs in a database of its own (dropped and re-created per run) on the server
in use, so a bench never touches application data. The ranking settings stay as shipped
(co-visitation on): the headline figures are what applications are served.

Per catalog size: items with real text-model vectors are bulk-loaded (COPY BINARY, HNSW
built after the load), synthetic users get clustered histories (COPY), the worker encodes
the users and its maintenance builds popularity and co-visitation neighbours; then we
time, interleaved and repeated, rerank() as served, rerank() on the vector path
(co-visitation off) and the raw HNSW query (the floor); rerank() with concurrent clients;
its HNSW recall against exact numpy search and the same ranking done application-side
(both on the vector path). The ml100k size does the same on the MovieLens-100K demo data,
per user class (light, median, heavy history). After the sizes, on the last catalog:
ingest with and without the event triggers, freshness at several event rates with a
worker running, and worker throughput.

Targets are reported, never asserted: a bench that fails on a slow laptop tells nothing.

Modules, in the order a run uses them: config (BenchConfig, targets), stats
(percentiles, recall, exact search), db (connections, sql/queries/bench.sql), data
(synthetic catalogue text and vectors), catalog (catalog, histories, bulk load),
workers (the text model, worker drains, a worker running in the background), latency
(rerank() timings and recall), appside (the same ranking done application-side), ml100k
(the MovieLens-100K size and its user classes), ingest, freshness, machine, report
(targets, markdown), run (one size, the whole bench), cli (incl. --markdown of a saved
result).
"""

from __future__ import annotations

from recdb.tools.bench.config import DEFAULT_DB, ML100K, TARGETS, BenchConfig
from recdb.tools.bench.ml100k import split_classes
from recdb.tools.bench.report import render, targets
from recdb.tools.bench.run import bench_size, run_bench
from recdb.tools.bench.stats import (
    exact_top_k,
    median_percentile_ms,
    parse_floats,
    parse_ints,
    parse_sizes,
    percentile_ms,
    recall_at_k,
)

__all__ = [
    "DEFAULT_DB",
    "ML100K",
    "TARGETS",
    "BenchConfig",
    "bench_size",
    "exact_top_k",
    "median_percentile_ms",
    "parse_floats",
    "parse_ints",
    "parse_sizes",
    "percentile_ms",
    "recall_at_k",
    "render",
    "run_bench",
    "split_classes",
    "targets",
]
