"""Prometheus metrics: one definition for `recdb worker --metrics-port` and `recdb serve`.

Database gauges (queue depth and age, parked rows, live workers, the active model,
the co-visitation backlog, maintenance runs) are read on scrape by `DatabaseGauges` with
one bounded query (sql/queries/metrics.sql), so every process that exposes them reports
the same numbers and nothing runs between scrapes. The worker adds its own process
metrics: counters read from its `WorkerStats` on scrape and a histogram of batch
durations observed as batches finish. Rates are PromQL's job
(``rate(recdb_users_encoded_total[5m])``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    start_http_server,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from recdb.db.sqlfiles import query
from recdb.status import LIVE_WITHIN_S

if TYPE_CHECKING:
    from recdb.worker import Worker, WorkerStats

log = logging.getLogger(__name__)

_Q = "queries/metrics.sql"
# Rows a queue count reads at most per scrape (see metrics_gauges).
QUEUE_COUNT_CAP = 1_000_000
QUEUES = ("items", "users")
# Item batches run a transformer (tens of ms to seconds); user batches are faster.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A scrape gives up (recdb_database_up 0) rather than outlast Prometheus' scrape timeout.
SCRAPE_TIMEOUT_S = 5

Gauges = Mapping[str, Any]


def read_gauges(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The metrics_gauges row (also the dashboard's queue panel)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            query(_Q, "metrics_gauges"),
            {"cap": QUEUE_COUNT_CAP, "live_within_s": LIVE_WITHIN_S},
        )
        row = cur.fetchone()
    assert row is not None  # one row, always
    return row


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "up": _gauge("recdb_database_up", "1 when the last scrape could read the database"),
        "depth": _gauge(
            "recdb_queue_depth",
            f"queued items / distinct queued users, not parked (counts stop at {QUEUE_COUNT_CAP})",
            ("queue",),
        ),
        "age": _gauge(
            "recdb_queue_oldest_age_seconds",
            "age of the oldest queued row that is not parked (0: empty)",
            ("queue",),
        ),
        "parked": _gauge(
            "recdb_parked_rows",
            "items / distinct users parked after --max-attempts failures (recdb status lists them)",
            ("queue",),
        ),
        "workers": _gauge(
            "recdb_workers_live", f"workers with a heartbeat in the last {LIVE_WITHIN_S:.0f}s"
        ),
        "model": _gauge(
            "recdb_active_model_id", "recdb.models id of the active model (0: text vectors served)"
        ),
        "backlog": _gauge(
            "recdb_covisitation_backlog",
            "re-encoded users whose co-visitation step is still pending: the neighbour lists"
            f" trail them (counts stop at {QUEUE_COUNT_CAP})",
        ),
        "duration": _gauge(
            "recdb_maintenance_last_duration_seconds",
            "duration of each maintenance job's last run (popularity, neighbors, retention)",
            ("job",),
        ),
        "finished": _gauge(
            "recdb_maintenance_last_finished_timestamp_seconds",
            "when each maintenance job last finished (unix time)",
            ("job",),
        ),
    }


class DatabaseGauges(Collector):
    """The database gauges, read on scrape by ``read()`` (a function returning the
    metrics_gauges row). A database that cannot be read gives recdb_database_up 0 and
    no other gauge, instead of a failed scrape."""

    def __init__(self, read: Callable[[], Gauges]) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would run a scrape (a query) at once.
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        f = _families()
        try:
            row = self._read()
        except (psycopg.Error, OSError) as exc:  # OSError: the pool's or socket's timeouts
            log.warning("metrics: cannot read the database: %s", exc)
            f["up"].add_metric([], 0)
            yield f["up"]
            return
        f["up"].add_metric([], 1)
        for queue in QUEUES:
            f["depth"].add_metric([queue], row[f"{queue}_depth"])
            f["age"].add_metric([queue], row[f"{queue}_oldest_age_s"])
            f["parked"].add_metric([queue], row[f"{queue}_parked"])
        f["workers"].add_metric([], row["workers_live"])
        f["model"].add_metric([], row["active_model_id"])
        f["backlog"].add_metric([], row["covisitation_backlog"])
        for job, run in sorted((row["maintenance"] or {}).items()):
            f["duration"].add_metric([job], run["seconds"])
            f["finished"].add_metric([job], run["finished_at"])
        yield from f.values()


class ScrapeConnection:
    """``read()`` for a process without a pool (the worker): one connection of its own,
    opened on the first scrape and again after a lost one. The worker's own connection
    cannot serve: it is inside a batch transaction most of the time."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # the HTTP server may scrape from several threads

    def __call__(self) -> Gauges:
        from recdb.db import connect

        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(
                    self._url,
                    autocommit=True,
                    application_name="recdb metrics",
                    vector=False,
                    connect_timeout=SCRAPE_TIMEOUT_S,
                )
                self._conn.execute(
                    query(_Q, "metrics_session"), {"timeout_ms": str(SCRAPE_TIMEOUT_S * 1000)}
                )
            try:
                return read_gauges(self._conn)
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
                raise


class WorkerCounters(Collector):
    """The worker's counters, read from its WorkerStats on scrape (the one tally)."""

    def __init__(self, stats: Callable[[], WorkerStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        for name, doc, value in (
            (
                "recdb_items_encoded",
                "items encoded (vectors written) by this worker",
                s.items_encoded,
            ),
            (
                "recdb_users_encoded",
                "users encoded (vectors written) by this worker",
                s.users_encoded,
            ),
            (
                "recdb_item_vectors_cached",
                "item vectors user batches took from this worker's cache (unchanged rows)",
                s.item_vectors_cached,
            ),
            (
                "recdb_item_vectors_read",
                "item vectors user batches read from recdb.items (not cached, or changed)",
                s.item_vectors_read,
            ),
            (
                "recdb_batch_errors",
                "failed batches, failed single-row retries and lost connections of this worker",
                s.errors,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)


def database_registry(read: Callable[[], Gauges]) -> CollectorRegistry:
    """A registry with the database gauges and the process' own metrics (CPU, memory)."""
    registry = CollectorRegistry()
    registry.register(DatabaseGauges(read))
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def serve_worker_metrics(worker: Worker, port: int, host: str) -> None:
    """Expose the worker's /metrics on host:port, from a daemon thread."""
    registry = database_registry(ScrapeConnection(worker.config.database_url))
    registry.register(WorkerCounters(lambda: worker.stats))
    batches = Histogram(
        "recdb_batch_duration_seconds",
        "wall time of item / user batches that did work (claim, encode, write, commit)",
        ["kind"],
        buckets=BATCH_BUCKETS,
        registry=registry,
    )
    for kind in QUEUES:
        batches.labels(kind)  # both series exist from the first scrape
    worker.add_batch_observer(lambda kind, seconds: batches.labels(kind).observe(seconds))
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
