"""The soak harness end to end at a tiny size (no timing asserts)."""

from __future__ import annotations

from recdb.tools.soak import SoakConfig, render, run_soak
from tests.support.tiny_model import tiny_text_encoder


def test_soak_runs_clean_and_reports(db_url):
    cfg = SoakConfig(duration=3, items=200, users=50, event_rate=100, workers=2)
    r = run_soak(db_url, cfg, text_encoder=tiny_text_encoder())
    assert r["errors"] == 0, (r["write_errors"], r["read_errors"])
    assert r["events"] > 50 and r["reranks"] > 10 and r["users_encoded"] > 0
    assert r["queue_left"] == 0 and r["parked"] == 0
    for key in ("queue_lag_p50_s", "queue_lag_p99_s", "rerank_p50_ms", "rerank_p99_ms"):
        assert r[key] is not None and r[key] >= 0
    assert "errors (writers, readers, workers) | 0" in render(r)
