"""`recdb bench`: the statistics it reports, and one tiny end-to-end run (no timing asserts)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest

from recdb.tools import bench
from recdb.tools.bench import data as bd
from tests.support.tiny_model import tiny_text_encoder

# --- recall and exact search on hand-made data ---------------------------------------------


def test_recall_counts_overlap_of_top_k_ignoring_order() -> None:
    assert bench.recall_at_k([1, 2, 3], [3, 2, 1], 3) == 1.0
    assert bench.recall_at_k([1, 2, 9], [1, 2, 3], 3) == pytest.approx(2 / 3)
    assert bench.recall_at_k([9, 8, 7], [1, 2, 3], 3) == 0.0
    # only the first k of each side count
    assert bench.recall_at_k([1, 9, 2, 3], [1, 2, 3, 4], 2) == 0.5
    # fewer than k qualifying items (narrow filter): the denominator is what exists
    assert bench.recall_at_k([5, 6, 7], [5, 6], 20) == 1.0
    assert bench.recall_at_k([5], [5, 6], 20) == 0.5
    assert bench.recall_at_k([], [], 20) == 1.0


def test_exact_top_k_orders_by_cosine_and_applies_exclusions_and_mask() -> None:
    vecs = np.array(
        [[1, 0], [0.9, 0.436], [0.6, 0.8], [0, 1], [-1, 0]], dtype=np.float32
    )  # unit rows, angles 0, ~26, ~53, 90, 180 degrees
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.array([10, 20, 30, 40, 50])
    q = np.array([1.0, 0.0], dtype=np.float32)
    assert bench.exact_top_k(vecs, ids, q, 3).tolist() == [10, 20, 30]
    # seen items are skipped; unknown ids in the exclusion list are ignored
    assert bench.exact_top_k(vecs, ids, q, 3, exclude_ids=[20, 999, 5]).tolist() == [10, 30, 40]
    # the allowed mask (availability / filter) removes rows
    allowed = np.array([False, True, True, True, True])
    assert bench.exact_top_k(vecs, ids, q, 2, allowed=allowed).tolist() == [20, 30]
    # k larger than what qualifies returns only what qualifies
    assert bench.exact_top_k(vecs, ids, q, 10, exclude_ids=[10, 20, 30, 40]).tolist() == [50]


def test_recall_of_exact_search_against_itself_and_a_perturbed_answer() -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1, 501)
    q = vecs[7]
    assert bench.exact_top_k(vecs, ids, q, 20)[0] == 8  # item 8 is the query's own row
    truth = bench.exact_top_k(vecs, ids, q, 20, exclude_ids=[8])
    assert 8 not in truth.tolist() and len(truth) == 20
    assert bench.recall_at_k(truth.tolist(), truth.tolist(), 20) == 1.0
    worse = [*truth[:15].tolist(), 1001, 1002, 1003, 1004, 1005]
    assert bench.recall_at_k(worse, truth.tolist(), 20) == 0.75


def test_percentiles_and_size_lists() -> None:
    assert bench.percentile_ms([0.001, 0.002, 0.003], 50) == 2.0
    assert bench.percentile_ms([], 99) is None
    assert bench.parse_ints("10000,100k, 1m") == [10_000, 100_000, 1_000_000]
    with pytest.raises(ValueError):
        bench.parse_ints("0")


# --- catalog generation --------------------------------------------------------------------


def test_catalog_is_deterministic_and_prefix_stable() -> None:
    big, small = bd.catalog(1500, seed=3), bd.catalog(1000, seed=3)
    assert big[:1000] == small
    assert [i.item_id for i in small[:3]] == [1, 2, 3]
    assert bd.catalog(10, seed=4) != bd.catalog(10, seed=3)
    texts = bd.item_texts(small[:2])
    assert small[0].title in texts[0] and "category:" in texts[0]


def test_expanded_vectors_keep_the_real_prefix_and_unit_norm() -> None:
    base = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    grown = bd.expand_vectors(base, 200, seed=0)
    assert grown.shape == (200, 8)
    np.testing.assert_array_equal(grown[:50], base)
    np.testing.assert_allclose(np.linalg.norm(grown, axis=1), 1.0, rtol=1e-5)
    parents = bd.expansion_parents(50, 200, seed=0)
    cos = np.einsum("ij,ij->i", grown[50:], base[parents])
    assert cos.min() > 0.8  # near-variants of their parent, not random points


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture
def tiny_result(server_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("RECDB_HOME", str(tmp_path))
    cfg = bench.BenchConfig(
        sizes=[300],
        users=40,
        clients=[1, 2],
        duration=0.4,
        queries=30,
        recall_queries=20,
        app_queries=20,
        event_rate=200,
        low_event_rate=50,
        freshness_duration=1.0,
        zero_lag_trials=5,
        ingest_events=100,
        new_items=8,
        admin_url=server_url,
        dbname=f"recdb_bench_test_{uuid.uuid4().hex[:8]}",
        worker_mode="thread",
        progress=False,
    )
    return bench.run_bench(cfg, text_encoder_factory=lambda: tiny_text_encoder(batch_size=16))


def test_bench_end_to_end_reports_the_design_keys(tiny_result: dict) -> None:
    r = json.loads(json.dumps(tiny_result, default=str))  # JSON-serialisable
    size = r["sizes"]["300"]
    for key in (
        "rerank_p50_ms",
        "rerank_p95_ms",
        "rerank_p99_ms",
        "recall_at_20",
        "ef_search",
        "app_side_p50_ms",
        "app_side_ratio",
        "select1_ms",
        "exact_scan_ms",
        "throughput_qps",
        "concurrent",
    ):
        assert size[key] is not None, key
    assert set(size["concurrent"]) == {"1", "2"}
    for c in size["concurrent"].values():
        assert {"p50_ms", "p99_ms", "qps"} <= set(c)
    assert 0.0 <= size["recall_at_20"] <= 1.0
    # the app-side pipeline computes the same ranking as rerank()
    assert size["app_side_agreement"] >= 0.8
    assert set(r["freshness"]) >= {"zero_lag_fraction", "worker_p50_ms", "worker_p99_ms"}
    assert r["freshness"]["zero_lag_fraction"] == 1.0
    assert r["freshness"]["events_not_reflected"] == 0
    assert r["freshness"]["low_rate"]["events_sent"] > 0
    assert set(r["ingest"]) >= {
        "events_per_s_with_triggers",
        "events_per_s_plain",
        "trigger_overhead",
    }
    assert r["worker"]["users_per_s"] > 0 and r["worker"]["items_per_s"] > 0
    assert r["worker"]["users_encoded"] == 40 and r["worker"]["items_encoded"] == 8
    # every user again through a sequence model of the shipped shape
    assert r["worker"]["sequence_users_encoded"] == 40
    assert r["worker"]["sequence_users_per_s"] > 0
    assert "postgres" in r["machine"] and r["vectors"]
    table = bench.render(tiny_result)
    assert "| 300 |" in table and "zero-lag" in table
