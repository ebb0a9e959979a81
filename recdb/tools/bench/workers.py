"""The text model and the worker during a bench: queue drains timed batch by batch, a
worker running while freshness is measured, and the worker's throughput figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from recdb.tools.bench import data as bd
from recdb.tools.bench.catalog import Catalog
from recdb.tools.bench.config import BenchConfig
from recdb.tools.bench.db import connect, q


class Encoders:
    """Loads the text model at most once per run (seconds and ~500 MB)."""

    def __init__(self, factory: Callable[[], Any] | None, device: str) -> None:
        self._factory = factory
        self._device = device
        self._enc: Any = None

    def __call__(self) -> Any:
        if self._enc is None:
            if self._factory is not None:
                self._enc = self._factory()
            else:
                from recdb.encoders import TextEncoder

                self._enc = TextEncoder(device=self._device)
        return self._enc

    @property
    def model_name(self) -> str | None:
        if self._factory is not None:
            return None  # injected encoders (tests) are never cached
        from recdb.encoders import resolve_model_path

        try:
            return resolve_model_path(os.environ.get("RECDB_MODEL"))
        except Exception:
            return None


@dataclass
class WorkerRun:
    stats: Any
    users_per_s: float | None  # steady state: batches after the first
    items_per_s: float | None
    users_per_s_end_to_end: float | None
    items_per_s_end_to_end: float | None


def _steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Rate over batches 2..N (the first includes connecting and warming caches)."""
    moved = [m for i, m in enumerate(marks) if i == 0 or m[1] != marks[i - 1][1]]
    if len(moved) < 2 or moved[-1][0] <= moved[0][0]:
        return None
    return (moved[-1][1] - moved[0][1]) / (moved[-1][0] - moved[0][0])


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if count else None


def run_worker_once(
    url: str, encoders: Encoders, device: str, user_encoder: str = "mean"
) -> WorkerRun:
    """Drain the queues with the real Worker, timing each batch through its batch hook."""
    from recdb.worker import Worker, WorkerConfig

    cfg = WorkerConfig(
        database_url=url,
        batch_size=64,
        user_batch_size=500,
        poll_interval=1.0,
        device=device,
        user_encoder=user_encoder,
    )
    worker = Worker(cfg, text_encoder=encoders())
    item_marks: list[tuple[float, int]] = []
    user_marks: list[tuple[float, int]] = []

    def mark(stats: Any) -> None:
        now = time.perf_counter()
        item_marks.append((now, stats.items_encoded))
        user_marks.append((now, stats.users_encoded))

    worker.add_batch_hook(mark)
    stats = worker.run(once=True)
    secs = stats.seconds or float("nan")
    e2e_users = _rate(stats.users_encoded, secs)
    e2e_items = _rate(stats.items_encoded, secs)
    steady_u = _steady_rate([m for m in user_marks if m[1] > 0])
    steady_i = _steady_rate([m for m in item_marks if m[1] > 0])
    return WorkerRun(
        stats,
        round(steady_u, 1) if steady_u else e2e_users,
        round(steady_i, 1) if steady_i else e2e_items,
        e2e_users,
        e2e_items,
    )


class WorkerHandle:
    """A worker running while we measure freshness: `recdb worker` in a subprocess (its own
    GIL and interpreter, as in production) or a BackgroundWorker thread (tests, injected
    encoders)."""

    def __init__(self, url: str, mode: str, encoders: Encoders, device: str) -> None:
        from recdb.worker.runner import BackgroundWorker

        self.mode = mode
        self._proc: subprocess.Popen[bytes] | None = None
        self._background: BackgroundWorker | None = None
        if mode == "process":
            env = dict(os.environ, RECDB_DATABASE_URL=url)
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "recdb.cli",
                    "worker",
                    "--database-url",
                    url,
                    "--poll-interval",
                    "1",
                    "--device",
                    device,
                    "--log-level",
                    "WARNING",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        else:
            from recdb.worker import Worker, WorkerConfig

            cfg = WorkerConfig(database_url=url, poll_interval=1.0, device=device)
            worker = Worker(cfg, text_encoder=encoders())
            self._background = BackgroundWorker(worker, name="bench-worker").start()

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            raise RuntimeError(f"bench worker exited with {self._proc.returncode}: {err[-2000:]}")
        if self._background is not None and not self._background.is_alive():
            self._background.stop()  # re-raises what the worker raised
            raise RuntimeError("bench worker stopped before it was ready")

    def wait_ready(self, conn: psycopg.Connection[Any], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if conn.execute(q("live_workers")).fetchone()[0] > 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"bench worker did not start within {timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._background is not None:
            self._background.stop(timeout=30)


def worker_items(
    url: str, cat: Catalog, n_items: int, cfg: BenchConfig, encoders: Encoders
) -> dict[str, Any]:
    """Items/s: insert new items without vectors and let the worker drain them."""
    count = cfg.new_items
    extra = (
        bd.catalog(n_items + count, cfg.seed)[n_items:]
        if n_items < bd.REAL_LIMIT
        else [
            bd.Item(n_items + j + 1, it.title, it.body, it.attrs)
            for j, it in enumerate(bd.catalog(count, cfg.seed + 1))
        ]
    )
    with connect(url, "items") as conn:
        with conn.cursor() as cur, cur.copy(q("copy_new_items")) as cp:
            cp.set_types(["bigint", "text", "text", "jsonb"])
            for j, it in enumerate(extra):
                cp.write_row((n_items + j + 1, it.title, it.body, Jsonb(it.attrs)))
        encoders()  # load the model before the clock starts, as a running worker has
        run = run_worker_once(url, encoders, cfg.device)
        conn.execute(q("delete_items_from"), {"first": n_items + 1})
    return {
        "items_per_s": run.items_per_s,
        "items_per_s_end_to_end": run.items_per_s_end_to_end,
        "items_encoded": run.stats.items_encoded,
        "items_seconds": round(run.stats.seconds, 3),
        "device": cfg.device,
    }


def worker_sequence_users(url: str, encoders: Encoders, cfg: BenchConfig) -> dict[str, Any]:
    """Users/s through a sequence model of the shipped shape (TrainConfig defaults; the
    weights are untrained: encoding costs the same), every user re-encoded."""
    from recdb.sequence import TrainConfig, TrainedModel, registry
    from recdb.worker import requeue_all_users

    with connect(url, "sequence") as conn:
        conn.execute(q("text_vectors_for_history_items"))
        kinds = [r[0] for r in conn.execute(q("event_kind_names"))]
        dim = encoders().dim
        model = TrainedModel.untrained(TrainConfig(seed=cfg.seed), dim, kinds)
        model_id = registry.save(conn, model, 0)
        conn.execute(q("serve_model_without_reprojection"), {"model_id": model_id})
        requeue_all_users(conn)
    try:
        run = run_worker_once(url, encoders, cfg.device, user_encoder="sequence")
    finally:
        with connect(url, "sequence") as conn:
            conn.execute(q("serve_model_without_reprojection"), {"model_id": None})
    return {
        "sequence_users_per_s": run.users_per_s,
        "sequence_users_per_s_end_to_end": run.users_per_s_end_to_end,
        "sequence_users_encoded": run.stats.users_encoded,
        "sequence_model": {k: model.cfg.to_json()[k] for k in ("max_len", "hidden", "layers")},
    }
