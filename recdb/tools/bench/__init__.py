"""`recdb bench`: performance figures of the whole product, measured in one run.

Everything runs in a database of its own (dropped and re-created per run) on the server
in use, so a bench never touches application data. Per catalog size: items with real
text-model vectors are bulk-loaded (COPY BINARY, HNSW built after the load), synthetic
users get clustered histories (COPY), the worker encodes the users, then we time
rerank() sequentially and with concurrent clients, check its HNSW recall against exact
numpy search, and time the same ranking done application-side. After the sizes, on the
last catalog: ingest with and without the event triggers, freshness under a steady event
rate with a worker running, and worker throughput.

Targets are reported, never asserted: a bench that fails on a slow laptop tells nothing.

Modules, in the order a run uses them: config (BenchConfig, targets), stats
(percentiles, recall, exact search), db (connections, sql/queries/bench.sql), data
(synthetic catalogue text and vectors), catalog (catalog, histories, bulk load),
workers (the text model, worker drains, a worker running in the background), latency
(rerank() timings and recall), appside (the same ranking done application-side), ingest,
freshness, machine, report (targets, markdown), run (one size, the whole bench), cli.
"""

from __future__ import annotations

from recdb.tools.bench.config import DEFAULT_DB, TARGETS, BenchConfig
from recdb.tools.bench.report import render, targets
from recdb.tools.bench.run import bench_size, run_bench
from recdb.tools.bench.stats import exact_top_k, parse_ints, percentile_ms, recall_at_k

__all__ = [
    "DEFAULT_DB",
    "TARGETS",
    "BenchConfig",
    "bench_size",
    "exact_top_k",
    "parse_ints",
    "percentile_ms",
    "recall_at_k",
    "render",
    "run_bench",
    "targets",
]
