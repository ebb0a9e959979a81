"""A worker subprocess for kill/signal tests: the real Worker loop and signal handling,
with the tiny test encoder; --delay slows each user batch so a signal lands mid-batch."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

import numpy as np

from recdb.cli.worker import install_signal_handlers
from recdb.encoders import MeanUserEncoder, UserBatch
from recdb.worker import Worker, WorkerConfig
from tests.support.tiny_model import tiny_text_encoder


class SlowMean(MeanUserEncoder):
    def __init__(self, delay: float, marker: str | None) -> None:
        super().__init__("cpu")
        self.delay = delay
        self.marker = marker

    def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        if self.marker:  # tell the test a batch is in progress
            open(self.marker, "a").close()
        time.sleep(self.delay)
        return super().encode_batch(batch)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--marker")
    p.add_argument("--once", action="store_true")
    p.add_argument("--user-batch-size", type=int, default=100)
    p.add_argument("--poll-interval", type=float, default=0.5)
    p.add_argument("--claim-timeout", type=float, default=120.0)
    p.add_argument(
        "--die-after-item-commit",
        action="store_true",
        help="exit(9) right after the first item batch commits, before its second sweep",
    )
    a = p.parse_args()
    if a.die_after_item_commit:
        from recdb.worker.queue import BatchQueue

        def die(self: BatchQueue, conn: Any, written: list[int]) -> None:
            if self.queries.kind == "items":
                os._exit(9)

        BatchQueue.after_commit = die  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    cfg = WorkerConfig(
        database_url=a.url,
        user_batch_size=a.user_batch_size,
        poll_interval=a.poll_interval,
        device="cpu",
        claim_timeout=a.claim_timeout,
    )
    worker = Worker(cfg, text_encoder=tiny_text_encoder(), user_encoder=SlowMean(a.delay, a.marker))
    install_signal_handlers(worker)
    stats = worker.run(once=a.once)
    print(f"users={stats.users_encoded} items={stats.items_encoded} batches={stats.batches}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
