"""`recdb worker`: options, signals and systemd notifications around recdb.worker.Worker.

First SIGTERM/SIGINT: finish the batch in progress, exit 0. Second: exit at once (the
open transaction is rolled back by the server; its rows stay queued).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING

from recdb import config
from recdb.cli.options import add_encoder_options, add_option

if TYPE_CHECKING:
    from recdb.worker import Worker

log = logging.getLogger("recdb.worker")


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--once", flag=True, help="drain the queues, then exit 0")
    add_option(
        parser,
        "--batch-size",
        type=int,
        default=config.WORKER_BATCH_SIZE,
        help="items encoded per batch",
    )
    add_option(
        parser,
        "--user-batch-size",
        type=int,
        default=config.WORKER_USER_BATCH_SIZE,
        help="users per batch",
    )
    add_option(
        parser,
        "--poll-interval",
        type=float,
        default=config.WORKER_POLL_INTERVAL_S,
        help="seconds between queue polls when no NOTIFY arrives",
    )
    add_encoder_options(parser)
    add_option(
        parser,
        "--model",
        help="text model: local path or model id (default: the packaged all-MiniLM-L6-v2)",
    )
    add_option(
        parser,
        "--max-attempts",
        type=int,
        default=config.WORKER_MAX_ATTEMPTS,
        help="tries before a failing item/user is parked",
    )
    add_option(
        parser,
        "--item-cache",
        type=int,
        default=config.WORKER_ITEM_CACHE,
        help="item vectors kept between user batches (~1.5 kB each at 384 dims; 0: off),"
        " each checked against its row's version every batch",
    )
    add_option(
        parser,
        "--popularity-interval",
        type=float,
        default=config.WORKER_POPULARITY_INTERVAL_S,
        help="seconds between maintenance runs (popularity, co-visitation, retention),"
        " in a thread of their own",
    )
    add_option(
        parser,
        "--maintenance-duty",
        type=float,
        default=config.WORKER_MAINTENANCE_DUTY,
        help="share of a core maintenance may hold while users wait to be re-encoded"
        " (it pauses between its transactions; 1: never yields)",
    )
    add_option(
        parser,
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    add_option(
        parser,
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics server binds (0.0.0.0: every interface)",
    )


def install_signal_handlers(worker: Worker) -> None:
    """SIGTERM/SIGINT once: graceful stop; twice: exit immediately."""
    from recdb.worker import systemd

    seen = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal seen
        seen += 1
        if seen > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        systemd.notify("STOPPING=1")
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def main(args: argparse.Namespace) -> int:
    from recdb.worker import Worker, WorkerConfig, systemd

    cfg = WorkerConfig(
        batch_size=args.batch_size,
        user_batch_size=args.user_batch_size,
        poll_interval=args.poll_interval,
        device=args.device,
        user_encoder=args.user_encoder,
        model=args.model,
        max_attempts=args.max_attempts,
        popularity_interval=args.popularity_interval,
        maintenance_duty=args.maintenance_duty,
        item_cache=args.item_cache,
    )
    worker = Worker(cfg)
    install_signal_handlers(worker)
    watchdog = systemd.Watchdog()
    ready = False

    def on_batch(_stats: object) -> None:
        nonlocal ready
        if not ready:
            systemd.notify("READY=1")
            ready = True
        watchdog()

    worker.add_batch_hook(on_batch)
    if args.metrics_port:
        from recdb.metrics import serve_worker_metrics

        serve_worker_metrics(worker, args.metrics_port, args.metrics_host)
    log.info(
        "worker %s starting (device=%s, user encoder=%s, once=%s)",
        cfg.worker_id,
        cfg.device,
        cfg.user_encoder,
        args.once,
    )
    stats = worker.run(once=args.once)
    log.info(
        "worker stopped: %d items, %d users encoded in %d batches, %d errors, %d parked, %.1fs",
        stats.items_encoded,
        stats.users_encoded,
        stats.batches,
        stats.errors,
        stats.parked,
        stats.seconds,
    )
    return 0
