"""`recdb bench --scale`: the shop-shaped workload generator, and one smoke step of 10^5
events end to end (the path CI keeps from rotting; no timing asserts)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from recdb.tools.bench import workload as wl
from recdb.tools.bench.scale import ScaleConfig, run_scale, user_classes
from recdb.tools.bench.scale_report import render_scale, scale_targets, write_scale_plot
from tests.support.tiny_model import tiny_text_encoder

NOW = 1_800_000_000.0

# --- the workload ----------------------------------------------------------------------------


def _log(n_events: int = 200_000, n_users: int = 20_000, n_items: int = 20_000) -> wl.Workload:
    cats = np.random.default_rng(1).integers(0, 12, n_items)
    return wl.shop_events(n_events, n_users, cats, seed=3, now=NOW)


def test_activity_is_a_power_law_that_sums_to_the_log() -> None:
    rng = np.random.default_rng(0)
    counts = wl.activity(2_000_000, 200_000, rng)
    assert counts.sum() == 2_000_000 and counts.min() >= 1
    assert counts.max() == wl.HEAVY_EVENTS  # capped, and the most active reach the cap
    assert (counts == wl.HEAVY_EVENTS).sum() >= wl.HEAVY_USERS
    assert np.median(counts) <= 5  # most users are light ...
    assert (counts >= 500).sum() >= 50  # ... and some are heavy
    # a small log caps at a hundredth of itself
    small = wl.activity(10_000, 1_000, np.random.default_rng(0))
    assert small.sum() == 10_000 and small.max() <= 100
    with pytest.raises(ValueError, match="at least one event per user"):
        wl.activity(10, 20, rng)


def test_the_log_is_in_time_order_deterministic_and_inside_the_catalogue() -> None:
    a, b = _log(), _log()
    assert len(a) == 200_000
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.seconds, b.seconds)
    assert np.all(np.diff(a.seconds) >= 0)
    assert a.seconds.max() <= NOW and a.seconds.min() >= NOW - wl.DAYS * 86400
    assert a.items.min() >= 1 and a.items.max() <= 20_000
    assert a.users.min() >= 1 and a.users.max() <= 20_000
    assert a.events_per_user(20_000).min() >= 1
    rated = a.kinds == wl.KINDS.index("rate")
    assert np.all((a.values[rated] >= 1) & (a.values[rated] <= 5))
    assert np.all(np.isnan(a.values[~rated]))


def test_popularity_is_skewed_and_sessions_make_pairs_recur() -> None:
    w = _log()
    per_item = np.sort(np.bincount(w.items))[::-1]
    assert per_item[:200].sum() > 0.2 * len(w)  # the top 1% of items take > 20% of events
    # Consecutive events of one user: companion pairs (ranks r, r^1 in one category) make
    # the same ordered pairs recur far more often than independent draws would.
    same_user = w.users[1:] == w.users[:-1]
    pairs = w.items[:-1][same_user] * 1_000_003 + w.items[1:][same_user]
    _, counts = np.unique(pairs, return_counts=True)
    shuffled = w.items.copy()
    np.random.default_rng(0).shuffle(shuffled)
    base = shuffled[:-1][same_user] * 1_000_003 + shuffled[1:][same_user]
    _, base_counts = np.unique(base, return_counts=True)
    assert counts.max() > 3 * base_counts.max()


def test_user_classes_sample_light_median_and_heavy() -> None:
    counts = np.array([1, 3, 3, 4, 900, 5, 0, 20, 21, 600])
    got = user_classes(counts, 10, random.Random(0))
    assert got["light"] == [1, 2, 3, 4, 6, 8]  # uid 7 has no events
    assert got["heavy"] == [5, 10]
    assert got["median"] == [4, 6]  # median 5 over the 9 users: the nearest 20% (2)
    assert len(user_classes(counts, 2, random.Random(0))["light"]) == 2


# --- one smoke step ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    cfg = ScaleConfig(
        steps=[100_000],
        worker_users=300,
        live_events=300,
        class_users=8,
        class_queries=10,
        repeats=1,
        admin_url=server_url,
        dbname=f"recdb_scale_test_{uuid.uuid4().hex[:8]}",
        worker_mode="thread",
        progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECDB_HOME", str(tmp_path_factory.mktemp("scale_home")))
        yield run_scale(cfg, text_encoder_factory=lambda: tiny_text_encoder(batch_size=64))


def test_a_scale_step_measures_every_cost(smoke: dict, tmp_path: Any) -> None:
    r = json.loads(json.dumps(smoke, default=str))
    step = r["scale"]["100000"]
    assert step["items"] == step["users"] == 10_000
    # the log went in through `recdb import`, none of it rejected, the live part held back
    assert step["imported"] == 100_000 - 300 and step["import_rejected"] == 0
    assert step["import_events_per_s"] > 0 and step["index_build_s"] > 0
    full = step["maintenance_full"]
    assert full["rows"]["refresh_neighbors"] > 0 and full["rows"]["refresh_popularity"] > 0
    assert step["worker_users_encoded"] >= 300
    live = step["live"]
    assert live["events"] == 300 and live["insert_events_per_s"] > 0
    assert live["maintenance"]["rows"]["sync_covisitation"] > 0  # incremental, not a rebuild
    assert "refresh_neighbors" not in live["maintenance"]["rows"]
    assert live["maintenance_s_per_1k_events"] > 0
    # the step's work apart from its time: pair counts it wrote (from the statistics)
    assert live["covisit_pair_writes_per_event"] > 0 and live["covisit_us_per_pair_write"] > 0
    for cls in ("light", "median", "heavy"):
        c = step["classes"][cls]
        assert c["users"] > 0, cls
        for prefix in ("rerank", "filtered", "candidates", "raw_hnsw"):
            assert c[f"{prefix}_p99_ms"] > 0, (cls, prefix)
    assert step["classes"]["heavy"]["events_min"] >= 500
    assert step["classes"]["light"]["events_max"] <= 20
    assert step["sizes_mb"]["database"] > step["sizes_mb"]["served_working_set"] > 0
    act = step["activation"]
    assert act["items"] == 10_000 and act["build_s"] > 0 and act["switch_s"] > 0
    assert act["rowwise_ms_per_item"] > 0 and act["rowwise_sample"] > 0
    # one step: the heavy / light ratio is measured; the step-to-step ones are not
    by_name = {t["name"]: t for t in r["targets"]}
    assert by_name["scale: served p99 heavy / light @largest step"]["measured"] > 0
    assert by_name["scale: served p99 @largest / @smallest step, worst class"]["met"] is None
    text = render_scale(r)
    assert "| `recdb import` events/s |" in text and "### Targets" in text
    m = r["machine"]
    assert m["mem_available_gib_at_start"] > 0 and m["mem_available_gib_at_end"] > 0
    assert f"end {m['load_avg_at_end']}; memory available at start" in text
    assert by_name["scale: model activation, minutes per 10^6 items @largest step"]["measured"] > 0
    assert "| model activation: stage, s |" in text
    png = tmp_path / "scale.png"
    write_scale_plot(r, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_targets_compare_the_largest_step_with_the_smallest() -> None:
    def step(light: float, heavy: float, per_1k: float) -> dict:
        return {
            "classes": {
                "light": {"rerank_p99_ms": light},
                "median": {"rerank_p99_ms": light},
                "heavy": {"rerank_p99_ms": heavy},
            },
            "live": {"maintenance_s_per_1k_events": per_1k},
        }

    result = {
        "scale": {"1000000": step(4.0, 5.0, 0.5), "10000000": step(5.0, 9.0, 0.6)},
        "wall_s": 4000.0,
    }
    got = {t["name"]: (t["measured"], t["met"]) for t in scale_targets(result)}
    assert got["scale: served p99 heavy / light @largest step"] == (1.8, False)
    assert got["scale: served p99 @largest / @smallest step, worst class"] == (1.8, False)
    assert got["scale: maintenance s per 1k new events @largest / @smallest step"] == (1.2, True)
    assert got["scale: wall time of a run to 10^7 events, s"] == (4000.0, False)


def test_latency_targets_carry_the_raw_hnsw_query_s_own_ratio() -> None:
    """Beside each latency ratio, the same ratio of the bare pgvector query in the same run:
    what the index alone does between the classes and the steps (README "At scale")."""

    def step(served: tuple[float, float, float], raw: tuple[float, float, float]) -> dict:
        return {
            "classes": {
                c: {"rerank_p99_ms": s, "raw_hnsw_p99_ms": r}
                for c, s, r in zip(("light", "median", "heavy"), served, raw, strict=True)
            },
            "live": {"maintenance_s_per_1k_events": 1.0},
        }

    result = {
        "scale": {
            "1000000": step((4.0, 4.0, 6.0), (2.0, 2.0, 2.5)),
            "3000000": step((6.0, 5.0, 9.0), (2.4, 3.0, 4.0)),
        }
    }
    floor = {t["name"]: t["floor"] for t in scale_targets(result)}
    assert floor["scale: served p99 heavy / light @largest step"] == 1.667  # 4.0 / 2.4
    # the worst class of the raw query, whichever it is (heavy here, light for served)
    assert floor["scale: served p99 @largest / @smallest step, worst class"] == 1.6
    assert floor["scale: maintenance s per 1k new events @largest / @smallest step"] is None
    text = render_scale({**result, "targets": scale_targets(result)})
    assert "| target | measured | raw HNSW query | met |" in text
    assert "| scale: served p99 heavy / light @largest step <= 1.5 | 1.500 | 1.667 | yes |" in text
