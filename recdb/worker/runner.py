"""Run a worker inside another program: in a background thread, or until the queues drain.

The loader, the demo, eval, bench, soak and the tests all need "a worker, here, now";
this is the one place that starts it in a thread, stops it and hands back its errors.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from recdb.worker.config import WorkerConfig, WorkerStats
from recdb.worker.loop import Worker


class BackgroundWorker:
    """``with BackgroundWorker(worker):`` runs ``worker.run()`` in a thread; leaving the
    block stops it after its batch, joins it and re-raises what the worker raised."""

    def __init__(self, worker: Worker, *, once: bool = False, name: str = "recdb-worker") -> None:
        self.worker = worker
        self.stats: WorkerStats | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(once,), name=name, daemon=True)

    def _run(self, once: bool) -> None:
        try:
            self.stats = self.worker.run(once=once)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def start(self) -> BackgroundWorker:
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self, timeout: float | None = None) -> WorkerStats | None:
        """Ask the worker to stop after its batch, wait for it, re-raise its error."""
        self.worker.stop()
        self._thread.join(timeout)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.stats

    def __enter__(self) -> BackgroundWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
        else:  # keep the caller's exception; the worker's would hide it
            self.worker.stop()
            self._thread.join()


def drain(
    url: str,
    *,
    user_encoder: str = "auto",
    text_encoder: Any = None,
    device: str = "auto",
    progress: bool = True,
    desc: str = "",
) -> WorkerStats:
    """Drain both queues with one in-process worker (``run(once=True)``) and return its
    stats; tqdm bars follow the queue depths, polled from a second connection, because
    the worker itself reports nothing until it is done."""
    from tqdm import tqdm

    from recdb.db import connect
    from recdb.db.sqlfiles import query

    cfg = WorkerConfig(
        database_url=url, user_encoder=user_encoder, device=device, poll_interval=1.0
    )
    background = BackgroundWorker(Worker(cfg, text_encoder=text_encoder), once=True)
    with connect(url, autocommit=True, application_name="recdb progress") as mon:

        def depths() -> tuple[int, int]:
            row = mon.execute(query("queries/worker.sql", "queue_depths")).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        items0, users0 = depths()
        show = progress and items0 + users0 > 0
        bars = [
            tqdm(total=n, desc=f"{desc}{name}", unit=f" {name}", disable=not show or not n)
            for name, n in (("items", items0), ("users", users0))
        ]
        try:
            with background:
                while background.is_alive():
                    background.join(0.5)
                    if show:
                        for bar, n0, n in zip(bars, (items0, users0), depths(), strict=True):
                            bar.update(max(0, min(n0, n0 - n)) - bar.n)
            for bar, n0 in zip(bars, (items0, users0), strict=True):
                bar.update(n0 - bar.n)
        finally:
            for bar in bars:
                bar.close()
    assert background.stats is not None
    return background.stats
