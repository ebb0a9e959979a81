"""What `recdb bench` measures and how hard: BenchConfig, the synthetic event mix, targets."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB = "recdb_bench"

# The bench size that loads the real MovieLens-100K demo data instead of a synthetic catalog.
ML100K = "ml100k"

KINDS = ("view", "click", "cart", "purchase", "like", "rate", "skip", "dislike")
KIND_P = (0.55, 0.25, 0.05, 0.05, 0.04, 0.02, 0.03, 0.01)

# ML-100K user classes by events per user (every user there has at least 20 ratings):
# light users, the middle MEDIAN_SHARE of users around the median count, heavy users.
LIGHT_MAX_EVENTS = 20
HEAVY_MIN_EVENTS = 500
MEDIAN_SHARE = 0.2
USER_CLASSES = ("light", "median", "heavy")

# The sequential latency paths, in the order each repetition runs them: what applications
# get (shipped settings), the vector path alone (co-visitation off), the bare HNSW query.
LATENCY_MODES = ("served", "vector", "raw_hnsw")

# (what, comparison, threshold); report._lookup() reads each from the result. A figure that
# was not measured (its size not run) is reported as measured None, met None.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("served rerank p99 @100k / raw HNSW p99 @100k", "<=", 1.5),
    ("recall_at_20 @100k", ">=", 0.95),
    ("served rerank p99 @ml100k light", "<=", 3.0),
    ("served rerank p99 @ml100k median", "<=", 3.0),
    ("served rerank p99 @ml100k heavy", "<=", 3.0),
    ("4 clients p99 / sequential p99 @100k", "<=", 2.0),
    ("trigger_overhead", "<=", 0.30),
    ("worker_p99_ms @1000 ev/s (refreshes running)", "<", 250.0),
    ("worker_p99_ms @3000 ev/s (refreshes running)", "<", 1000.0),
    ("worker users_per_s (mean encoder)", ">=", 2000.0),
    ("zero_lag_fraction", ">=", 1.0),
    ("rerank p99 with 3 fresh events (model fold) - with none @ml100k, ms", "<=", 1.0),
)
# The fold-cost figure: users timed, events each leaves unseen by the worker.
FRESH_USERS = 200
FRESH_EVENTS = 3


@dataclass
class BenchConfig:
    """What to measure and how hard; defaults are the documented `recdb bench` run."""

    # catalog sizes (synthetic items) and ML100K (the real demo data in its own database)
    sizes: list[int | str] = field(default_factory=lambda: [ML100K, 10_000, 100_000])
    users: int = 5000
    clients: list[int] = field(default_factory=lambda: [1, 4])
    duration: float = 8.0  # seconds per concurrent-clients run
    queries: int = 1000  # sequential calls per size, per latency path and repetition
    repeats: int = 3  # repetitions of each sequential latency figure (median reported)
    class_queries: int = 300  # ML-100K: calls per user class, per path and repetition
    recall_queries: int = 300
    app_queries: int = 300
    k: int = 20
    seed: int = 0
    event_rates: list[float] = field(default_factory=lambda: [50.0, 1000.0, 3000.0])
    # rates run a second time while the maintenance refreshes run (the targets' figures)
    refresh_rates: list[float] = field(default_factory=lambda: [1000.0, 3000.0])
    freshness_duration: float = 10.0  # seconds of steady load per event rate
    zero_lag_trials: int = 200  # per event rate
    ingest_events: int = 4000  # x 3: single-row inserts per table over ingest.ROUNDS rounds
    new_items: int = 256  # items the worker encodes for items_per_s
    admin_url: str | None = None
    dbname: str = DEFAULT_DB
    keep: bool = False
    worker_mode: str = "process"  # "process": `recdb worker` subprocess; "thread": in-process
    device: str = "cpu"
    progress: bool = True
    cache: bool = True
    time_limit: float = 3600.0  # hard stop for the timed loops as a whole
