"""`recdb bench`: the statistics it reports, and one tiny end-to-end run (no timing asserts)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from recdb.tools import bench
from recdb.tools.bench import data as bd
from recdb.tools.bench.ingest import ROUNDS
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
    assert bench.parse_sizes("ML100K, 10k,100000") == ["ml100k", 10_000, 100_000]
    assert bench.parse_floats("50, 1000,3k") == [50.0, 1000.0, 3000.0]
    with pytest.raises(ValueError):
        bench.parse_sizes("ml1m")
    with pytest.raises(ValueError):
        bench.parse_floats("0")


def test_reported_percentile_is_the_median_over_repetitions() -> None:
    # one repetition with a slow tail does not set the reported p99, as pooling would
    calm = [[0.001] * 99 + [0.002]] * 2
    noisy = [[0.001] * 90 + [0.050] * 10]
    assert bench.median_percentile_ms([*calm, *noisy], 99) == 1.01  # each calm rep's p99
    assert bench.percentile_ms([x for rep in [*calm, *noisy] for x in rep], 99) == 50.0
    assert bench.median_percentile_ms([*calm, *noisy], 50) == 1.0
    assert bench.median_percentile_ms([[], []], 50) is None


def test_user_classes_split_by_event_count() -> None:
    # 100 users: 10 light (20 events), 85 around a median of ~60, 5 heavy (>= 500)
    counts = {u: 20 for u in range(10)}
    counts |= {10 + u: 40 + u // 2 for u in range(85)}
    counts |= {95 + u: 500 + 50 * u for u in range(5)}
    classes = bench.split_classes(counts)
    assert classes["light"] == list(range(10))
    assert classes["heavy"] == list(range(95, 100))
    median = float(np.median(list(counts.values())))
    assert len(classes["median"]) == 20  # the middle 20% of users
    spread = max(abs(counts[u] - median) for u in classes["median"])
    outside = [u for u in counts if u not in classes["median"]]
    assert all(abs(counts[u] - median) >= spread for u in outside)  # the closest ones
    assert bench.split_classes({}) == {"light": [], "median": [], "heavy": []}


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


@pytest.fixture(scope="module")
def tiny_result(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One tiny run (ML-100K with a tiny encoder, 300 synthetic items), shared by the
    tests that read it: the run is the slow part."""
    cfg = bench.BenchConfig(
        sizes=[bench.ML100K, 300],
        users=40,
        clients=[1, 4],
        duration=0.4,
        queries=30,
        repeats=2,
        class_queries=10,
        recall_queries=20,
        app_queries=20,
        event_rates=[50, 200],
        refresh_rates=[200],
        freshness_duration=1.0,
        zero_lag_trials=5,
        ingest_events=100,
        new_items=8,
        admin_url=server_url,
        dbname=f"recdb_bench_test_{uuid.uuid4().hex[:8]}",
        worker_mode="thread",
        progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECDB_HOME", str(tmp_path_factory.mktemp("bench_home")))
        yield bench.run_bench(cfg, text_encoder_factory=lambda: tiny_text_encoder(batch_size=16))


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
    # served (as shipped), vector path and raw HNSW: each repeated, interleaved
    for prefix in ("rerank", "vector", "raw_hnsw", "select1"):
        for p in (50, 95, 99):
            key = f"{prefix}_p{p}_ms"
            assert size[key] > 0, key
    assert size["repeats"] == 2
    # the bulk load rebuilt the served partition's HNSW index (the floor is that index)
    assert size["raw_hnsw_index_scan"] is True
    assert size["rerank_queries"] == size["vector_queries"] == size["raw_hnsw_queries"] == 60
    assert [len(size["latency_by_repetition_ms"][m]) for m in ("served", "vector")] == [2, 2]
    assert size["settings"]["covisit_weight"] > 0  # shipped settings stay in place
    assert size["maintenance"]["refresh_neighbors"] > 0  # co-visitation neighbours exist
    assert set(size["concurrent"]) == {"1", "4"}
    for c in size["concurrent"].values():
        assert {"p50_ms", "p99_ms", "qps"} <= set(c)
    # the same clients on a pure-CPU query sized to the served p50: the ratio's floor
    floor = size["concurrent_floor"]
    assert floor["sized_to_ms"] == size["rerank_p50_ms"] and floor["rows_counted"] >= 1000
    assert all(floor[c]["queries"] > 0 for c in ("1", "4"))
    assert 0.0 <= size["recall_at_20"] <= 1.0
    # the app-side pipeline computes the same ranking as rerank() on the vector path
    assert size["app_side_agreement"] >= 0.8

    ml = r["sizes"]["ml100k"]
    assert ml["items"] == 1682 and ml["users"] == 943 and ml["worker_users_encoded"] >= 943
    classes = ml["classes"]
    assert set(classes) == {"light", "median", "heavy"}
    assert classes["heavy"]["users"] == 5 and classes["light"]["users"] == 32
    assert classes["median"]["users"] >= 150
    for cls, c in classes.items():
        for key in ("rerank", "vector", "raw_hnsw"):
            assert c[f"{key}_p50_ms"] > 0 and c[f"{key}_p99_ms"] > 0, (cls, key)
        assert c["exact_p50_ms"] > 0 and c["exact_p99_ms"] > 0
        assert c["rerank_queries"] == 20  # class_queries x repeats
    fold = ml["fresh_fold"]  # the zero-lag fold's cost: none vs 3 unseen events, 2 algebras
    assert fold["fresh_events"] == 3 and fold["users"] > 0
    for name in ("none", "mean_fold", "model_fold"):
        assert fold[name]["p50"] > 0 and fold[name]["p99"] >= fold[name]["p50"], name
    assert fold["model_fold_p99_over_none_ms"] == pytest.approx(
        fold["model_fold"]["p99"] - fold["none"]["p99"], abs=1e-3
    )

    fr = r["freshness"]
    assert set(fr["by_rate"]) == {"50", "200"}
    assert fr["zero_lag_fraction"] == 1.0 and fr["zero_lag_trials"] > 0
    for run in fr["by_rate"].values():
        assert run["events_sent"] > 0 and run["events_not_reflected"] == 0
        assert run["worker_p99_ms"] is not None and run["zero_lag_fraction"] == 1.0
    busy = fr["by_rate"]["200"]["during_refresh"]  # the same load beside the refreshes
    assert busy["events_sent"] > 0 and busy["events_not_reflected"] == 0
    assert busy["refresh_s"] > 0 and set(busy["refresh_rows"]) >= {"sync_covisitation"}
    assert "during_refresh" not in fr["by_rate"]["50"]
    # DESIGN.md's top-level keys: the fastest rate here, beside the refreshes
    assert fr["worker_p99_ms"] == busy["worker_p99_ms"]
    assert fr["headline"] == "200 events/s, refreshes running"
    assert set(r["ingest"]) >= {
        "events_per_s_with_triggers",
        "events_per_s_plain",
        "trigger_overhead",
    }
    rounds = r["ingest"]["single_row"]["trigger_overhead_rounds"]
    assert len(rounds) == ROUNDS  # the overhead is their median, the plain table's beside
    assert r["ingest"]["trigger_overhead"] == r["ingest"]["single_row"]["trigger_overhead"]
    assert r["worker"]["users_per_s"] > 0 and r["worker"]["items_per_s"] > 0
    assert r["worker"]["users_encoded"] == 40 and r["worker"]["items_encoded"] == 8
    # every user again through a sequence model of the shipped shape
    assert r["worker"]["sequence_users_encoded"] == 40
    assert r["worker"]["sequence_users_per_s"] > 0
    m = r["machine"]
    assert "postgres" in m and r["vectors"]
    assert len(m["load_avg_at_start"]) == 3 and len(m["load_avg_at_end"]) == 3
    # memory another process holds (a second database server) shows in the run
    assert 0 < m["mem_available_gib_at_start"] <= m["mem_total_gib"]
    assert 0 < m["mem_available_gib_at_end"] <= m["mem_total_gib"]

    got = {t["name"]: t for t in r["targets"]}
    assert list(got) == [name for name, _, _ in bench.TARGETS]
    for cls in ("light", "median", "heavy"):
        t = got[f"served rerank p99 @ml100k {cls}"]
        assert t["measured"] == classes[cls]["rerank_p99_ms"] and t["met"] is not None
    assert got["trigger_overhead"]["met"] is not None
    assert got["zero_lag_fraction"]["met"] is True
    # no 100k size and no 1000 / 3000 events/s run: not measured, not judged
    for name in (
        "served rerank p99 @100k / raw HNSW p99 @100k",
        "recall_at_20 @100k",
        "4 clients p99 / sequential p99 @100k",
        "worker_p99_ms @1000 ev/s (refreshes running)",
        "worker_p99_ms @3000 ev/s (refreshes running)",
    ):
        assert got[name]["measured"] is None and got[name]["met"] is None, name


def test_targets_read_the_headline_size_rate_and_clients() -> None:
    result = {
        "sizes": {
            "100000": {
                "rerank_p99_ms": 6.0,
                "raw_hnsw_p99_ms": 5.0,
                "recall_at_20": 0.96,
                "concurrent": {"4": {"p99_ms": 15.0}},
            }
        },
        "freshness": {
            "by_rate": {
                "1000": {"worker_p99_ms": 100.0, "during_refresh": {"worker_p99_ms": 300.0}},
                "3000": {"worker_p99_ms": 700.0, "during_refresh": {"worker_p99_ms": 900.0}},
            }
        },
    }
    got = {t["name"]: (t["measured"], t["met"]) for t in bench.targets(result)}
    assert got["served rerank p99 @100k / raw HNSW p99 @100k"] == (1.2, True)
    assert got["recall_at_20 @100k"] == (0.96, True)
    assert got["4 clients p99 / sequential p99 @100k"] == (2.5, False)
    # freshness is judged with the refreshes running
    assert got["worker_p99_ms @1000 ev/s (refreshes running)"] == (300.0, False)
    assert got["worker_p99_ms @3000 ev/s (refreshes running)"] == (900.0, True)
    assert got["trigger_overhead"] == (None, None)


def test_markdown_renders_a_saved_result(tiny_result: dict, tmp_path: Any, capsys: Any) -> None:
    from recdb.cli import main

    path = tmp_path / "bench.json"
    path.write_text(json.dumps(tiny_result, default=str), encoding="utf-8")
    assert main(["bench", "--markdown", str(path)]) == 0
    text = capsys.readouterr().out
    assert text == bench.render(json.loads(path.read_text(encoding="utf-8")))
    for heading in (
        "### 300 items",
        "### MovieLens-100K by user class",
        "### Concurrent clients",
        "### Freshness",
        "### Ingest",
        "### Worker throughput",
        "### Targets",
    ):
        assert heading in text, heading
    for row in ("| served `rerank()`", "| vector path", "| raw HNSW query", "| SELECT 1 |"):
        assert row in text, row
    assert "| light |" in text and "| heavy |" in text
    assert "| served rerank p99 @ml100k heavy <= 3 |" in text
    assert "zero-lag" in text
    commit = tiny_result["machine"].get("commit")
    assert f"Commit {commit or '?'}" in text
    m = tiny_result["machine"]
    assert f"memory available at start {m['mem_available_gib_at_start']} GiB" in text
