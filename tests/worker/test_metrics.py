"""`recdb worker --metrics-port`: a real worker process (the CLI, with the tiny test model
saved as a local model directory) exposes /metrics; Prometheus' own parser reads it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard.server import free_port
from tests.support import REPO_ROOT
from tests.support.builders import add_events, add_items
from tests.support.tiny_model import tiny_text_encoder

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ITEMS, USERS = (("queue", "items"),), (("queue", "users"),)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random BERT (dim 32, as the test schema) as a model directory."""
    d = tmp_path_factory.mktemp("tiny-model")
    encoder = tiny_text_encoder()
    encoder.model.save_pretrained(d)
    encoder.tokenizer.save_pretrained(d)
    return d


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(
    port: int, ok: Callable[[Samples], bool], proc: subprocess.Popen, log: Path
) -> Samples:
    deadline = time.monotonic() + 90
    last: Samples = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"worker exited {proc.returncode}: {log.read_text()}"
        try:
            last = scrape(port)
            if ok(last):
                return last
        except httpx.TransportError:
            pass  # not listening yet: sleep, then poll again
        time.sleep(0.2)
    raise AssertionError(f"metrics never got there; last scrape {last}; log {log.read_text()}")


@pytest.fixture
def worker(
    db_url: str, tiny_model_dir: Path, tmp_path: Path
) -> Iterator[tuple[int, subprocess.Popen, Path]]:
    port = free_port()
    log = tmp_path / "worker.log"
    cmd = [
        sys.executable, "-m", "recdb.cli", "worker", "--model", str(tiny_model_dir),
        "--device", "cpu", "--poll-interval", "0.3", "--metrics-port", str(port),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "RECDB_DATABASE_URL": db_url},
        )  # fmt: skip
    try:
        yield port, proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_metrics_follow_the_queues_and_the_batches(conn, worker):
    add_items(conn, [{"item_id": i, "title": f"film number {i}"} for i in range(1, 6)])
    add_events(conn, 7, [1, 2])
    add_events(conn, 8, [5])
    # item 5 and user 8 stay queued while the test runs: they show as depth and age
    conn.execute("UPDATE recdb.item_queue SET not_before = now() + interval '1 hour'"
                 " WHERE item_id = 5")  # fmt: skip
    conn.execute("UPDATE recdb.user_queue SET not_before = now() + interval '1 hour'"
                 " WHERE user_id = 8")  # fmt: skip
    port, proc, log = worker

    m = wait_for(
        port,
        lambda m: (
            m.get(("recdb_items_encoded_total", ())) == 4
            and m.get(("recdb_queue_depth", USERS)) == 1
            and ("recdb_maintenance_last_duration_seconds", (("job", "popularity"),)) in m
        ),
        proc,
        log,
    )
    assert m[("recdb_queue_depth", ITEMS)] == 1  # item 5
    queued = conn.execute("SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NULL")
    assert queued.fetchone()[0] == 1
    assert m[("recdb_queue_oldest_age_seconds", ITEMS)] > 0
    assert m[("recdb_queue_oldest_age_seconds", USERS)] > 0
    assert m[("recdb_users_encoded_total", ())] >= 1  # user 7
    assert m[("recdb_batch_duration_seconds_count", (("kind", "items"),))] >= 1
    assert m[("recdb_batch_duration_seconds_count", (("kind", "users"),))] >= 1
    assert m[("recdb_batch_duration_seconds_sum", (("kind", "items"),))] > 0
    assert (("recdb_batch_duration_seconds_bucket", (("kind", "users"), ("le", "+Inf")))) in m
    assert m[("recdb_batch_errors_total", ())] == 0
    assert m[("recdb_parked_rows", ITEMS)] == m[("recdb_parked_rows", USERS)] == 0
    assert m[("recdb_active_model_id", ())] == 0
    assert m[("recdb_workers_live", ())] == 1
    assert m[("recdb_database_up", ())] == 1

    # a new event: the next user batch shows in the counter and the histogram
    users_before = m[("recdb_users_encoded_total", ())]
    batches_before = m[("recdb_batch_duration_seconds_count", (("kind", "users"),))]
    add_events(conn, 9, [1])
    m = wait_for(port, lambda m: m[("recdb_users_encoded_total", ())] > users_before, proc, log)
    assert m[("recdb_batch_duration_seconds_count", (("kind", "users"),))] > batches_before
    assert m[("recdb_queue_depth", USERS)] == 1  # only user 8, still held back

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    assert "metrics on http://127.0.0.1:" in log.read_text()


def test_metrics_are_off_unless_a_port_is_given(monkeypatch):
    from recdb.cli import build_parser

    assert build_parser().parse_args(["worker"]).metrics_port is None
    monkeypatch.setenv("RECDB_METRICS_PORT", "8701")
    args = build_parser().parse_args(["worker"])
    assert (args.metrics_port, args.metrics_host) == (8701, "127.0.0.1")
