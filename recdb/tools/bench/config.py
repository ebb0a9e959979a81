"""What `recdb bench` measures and how hard: BenchConfig, the synthetic event mix, targets."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB = "recdb_bench"

KINDS = ("view", "click", "cart", "purchase", "like", "rate", "skip", "dislike")
KIND_P = (0.55, 0.25, 0.05, 0.05, 0.04, 0.02, 0.03, 0.01)

# (what, comparison, threshold); report._lookup() reads each from the result
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("rerank_p99_ms @100k (sequential)", "<=", 10.0),
    ("recall_at_20 @100k", ">=", 0.95),
    ("app_side_ratio @100k (app-side / rerank p50)", ">=", 3.0),
    ("trigger_overhead", "<=", 0.30),
    ("worker users_per_s (mean encoder)", ">=", 2000.0),
    ("zero_lag_fraction", ">=", 1.0),
    ("worker_p99_ms (freshness)", "<", 1000.0),
)


@dataclass
class BenchConfig:
    """What to measure and how hard; defaults are the documented `recdb bench` run."""

    sizes: list[int] = field(default_factory=lambda: [10_000, 100_000])
    users: int = 5000
    clients: list[int] = field(default_factory=lambda: [1, 4])
    duration: float = 8.0  # seconds per concurrent-clients run
    queries: int = 1000  # sequential rerank() calls per size
    recall_queries: int = 300
    app_queries: int = 300
    k: int = 20
    seed: int = 0
    event_rate: float = 1000.0  # events/s during the freshness run
    low_event_rate: float = 50.0  # a second freshness run below saturation (0: none)
    freshness_duration: float = 10.0
    zero_lag_trials: int = 200
    ingest_events: int = 4000  # single-row inserts per table (half per round, 2 rounds)
    new_items: int = 256  # items the worker encodes for items_per_s
    admin_url: str | None = None
    dbname: str = DEFAULT_DB
    keep: bool = False
    worker_mode: str = "process"  # "process": `recdb worker` subprocess; "thread": in-process
    device: str = "cpu"
    progress: bool = True
    cache: bool = True
    time_limit: float = 3600.0  # hard stop for the timed loops as a whole
