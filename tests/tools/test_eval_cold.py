"""`recdb eval --cold-items` on a synthetic catalogue where new items belong to a topic.

Items come in topic clusters whose titles share a word ("apple apple apple apple part 3"),
so even the tiny random BERT puts each cluster in its own corner of the vector space.
Every user watches three items of one cluster early on; later each cluster gets a new
item (part 5), first watched long after everything else, so the newest items by first
interaction are exactly the six part-5 items. Half the users also rate an old item after
the new one (future share 1/2 for them, 1 for the others).
"""

from __future__ import annotations

import json
import math
import uuid

import pytest

from recdb.datasets.movielens import Movie, Rating
from recdb.db import connect, scratch
from recdb.db.sqlfiles import query
from recdb.sequence import TrainConfig
from recdb.tools.eval import cold, format_cold_table, run_cold_items, write_plot
from tests.support.tiny_model import tiny_text_encoder

WORDS = ("apple", "river", "engine", "violin", "tiger", "castle")
PER_CLUSTER = 6
NEW = PER_CLUSTER - 1  # part 5 of every cluster is the new item
EARLY, LATE = 880_000_000, 890_000_000
TINY_SEQUENCE = TrainConfig(
    epochs=10, max_len=8, hidden=16, layers=1, heads=2, dropout=0.1, lr=5e-3, min_count=2,
    patience=10, device="cpu", threads=1,
)  # fmt: skip


def cluster_of(user: int) -> int:
    return user % len(WORDS)


def synthetic() -> tuple[list[Movie], list[Rating]]:
    items = [
        Movie(c * 100 + j, f"{w} {w} {w} {w} part {j}", None, [w])
        for c, w in enumerate(WORDS)
        for j in range(PER_CLUSTER)
    ]
    ratings = []
    for u in range(1, 13):  # two users per cluster: one <= 6, one > 6
        c = cluster_of(u)
        for step, j in enumerate((0, 1, 2)):
            ratings.append(Rating(u, c * 100 + j, 5.0, EARLY + 3600 * u + 60 * step))
        ratings.append(Rating(u, c * 100 + NEW, 5.0, LATE + 3600 * u))  # the new item
        # part 3: early for the first user of the cluster, after the new item for the second
        when = EARLY + 3600 * u + 600 if u <= 6 else LATE + 3600 * u + 60
        ratings.append(Rating(u, c * 100 + 3, 4.0, when))
    return items, ratings


@pytest.fixture
def cold_db(server_url, template_url):
    name = f"recdb_eval_cold_test_{uuid.uuid4().hex[:8]}"
    yield name
    scratch.drop(server_url, name)


def test_split_metrics_and_targets_by_hand():
    _, ratings = synthetic()
    s = cold.split_new_items(ratings, 0.2)  # ceil(0.2 x 30 rated items) = 6
    assert s.new_items == [c * 100 + NEW for c in range(len(WORDS))]
    assert s.t == LATE + 3600 * 1  # user 1 watched the first new item
    assert len(s.held_out) == 12 and len(s.kept) == len(ratings) - 12
    assert s.relevant == {u: {cluster_of(u) * 100 + NEW} for u in range(1, 13)}
    assert s.future == {u: (1, 1) if u <= 6 else (1, 2) for u in range(1, 13)}
    assert cold.future_share(s.future) == pytest.approx(0.75)
    # ties on the first interaction go by item id; float noise does not add an item
    tie = [Rating(1, i, 5.0, 100 if i < 3 else 200) for i in range(10)]
    assert cold.split_new_items(tie, 0.3).new_items == [7, 8, 9]
    assert cold.split_new_items(tie, 0.05).new_items == [9]

    # multi-relevant NDCG: relevant {1, 2} at ranks 2 and 3; ideal = ranks 1 and 2
    idcg = 1 + 1 / math.log2(3)
    assert cold.ndcg_at_k([9, 1, 2], {1, 2}, 10) == pytest.approx((1 / math.log2(3) + 0.5) / idcg)
    assert cold.ndcg_at_k([9, 1, 2], {1, 2}, 2) == pytest.approx((1 / math.log2(3)) / idcg)
    assert cold.hit_at_k([9, 1], {1}, 1) == 0.0 and cold.hit_at_k([9, 1], {1}, 2) == 1.0
    assert cold.recall_at_k([1, 9, 8], {1, 2}, 3) == 0.5
    # random: 4 items, 1 relevant, k 10 -> each rank 1/4; HR certain
    ndcg, hr = cold.random_expectation(4, 1, 10)
    assert ndcg == pytest.approx(sum(1 / math.log2(p + 1) for p in range(1, 5)) / 4)
    assert hr == 1.0
    # 10 items, 2 relevant, k 3: miss = C(8,3)/C(10,3) = 56/120
    ndcg, hr = cold.random_expectation(10, 2, 3)
    assert hr == pytest.approx(1 - 56 / 120)
    assert ndcg == pytest.approx(0.2 * (1 + 1 / math.log2(3) + 0.5) / idcg)
    # exposure: user 1 has 2 new items in a top 4, user 2 none -> (2/4 + 0) / 2
    ranked = {1: [5, 50, 6, 7], 2: [6, 7, 8, 9]}
    assert cold.exposure_at_k(ranked, [1, 2], {5, 50}, 4) == 0.25
    g = cold.catalogue_metrics(ranked, {1: {5}, 2: {50}}, {5, 50}, {1: (1, 2), 2: (1, 1)}, k=4)
    assert g["recall@4"] == 0.5 and g["exposure@4"] == 0.25
    assert g["future_share"] == 0.75 and g["exposure_meets_future_share"] is False
    assert g["ndcg@10"] == 0.5  # user 1 hits at rank 1, user 2 misses

    methods = {
        "a": {"candidates": {"lift": 2.2}, "catalogue": {"exposure@20": 0.3, "future_share": 0.2}},
        "b": {"candidates": {"lift": 1.5}, "catalogue": {"exposure@20": 0.1, "future_share": 0.2}},
    }
    got = {
        t["name"]: (t["measured"], t["threshold"], t["met"])
        for t in cold.targets(methods, ["a", "b"])
    }
    assert got == {
        "candidates lift, a": (2.2, 2.0, True),
        "candidates lift, b": (1.5, 2.0, False),
        "candidates lift, best (a)": (2.2, 2.5, False),
        "exposure@20 >= future share, a": (0.3, 0.2, True),
        "exposure@20 >= future share, b": (0.1, 0.2, False),
    }


def test_new_items_reach_the_users_of_their_topic(server_url, cold_db, tmp_path):
    items, ratings = synthetic()
    cold_items = run_cold_items(
        server_url,
        items,
        ratings,
        fraction=0.2,
        encoders=["mean", "sequence", "text"],
        database=cold_db,
        text_encoder=tiny_text_encoder(),
        device="cpu",
        progress=False,
        dataset="synthetic",
        sequence_config=TINY_SEQUENCE,
    )
    p = cold_items["protocol"]
    new = [c * 100 + NEW for c in range(len(WORDS))]
    assert p["new_items"] == new and p["n_new_items"] == 6 and p["users"] == 12
    assert p["T"] == LATE + 3600 and p["future_share"] == pytest.approx(0.75)
    assert p["new_item_events_in_database"] == 0 and p["interactions_held_out"] == 12

    # the database holds every rating but the new items' (scoring adds no events)
    url = scratch.with_database(server_url, cold_db)
    with connect(url, autocommit=True) as conn:
        row = conn.execute(query("queries/eval.sql", "cold_item_events"), {"items": new})
        assert row.fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM recdb.events").fetchone()[0] == len(ratings) - 12
        assert conn.execute("SELECT count(*) FROM recdb.items").fetchone()[0] == len(items)
        # candidates mode by hand (the last encoder, text, is in service): the new item of
        # the user's own cluster comes first, above every unrelated new item
        for u in range(1, 13):
            got = [
                r[0]
                for r in conn.execute(
                    query("queries/eval.sql", "rerank_candidates"),
                    {"user_id": u, "k": 10, "candidates": new},
                )
            ]
            assert sorted(got) == new
            assert got[0] == cluster_of(u) * 100 + NEW, (u, got)

    m = cold_items["methods"]
    assert set(m) == {"random", "content", "mean", "sequence", "text"}
    random_ndcg = sum(1 / math.log2(p + 1) for p in range(1, 7)) / 6  # 1 of 6, each rank 1/6
    assert m["random"]["candidates"]["ndcg@10"] == pytest.approx(random_ndcg)
    assert m["random"]["candidates"]["hr@10"] == 1.0
    for name in ("content", "mean", "text"):
        c = m[name]["candidates"]
        assert c["ndcg@10"] == 1.0, (name, c)
        assert c["lift"] == pytest.approx(1 / random_ndcg)
    for name in ("mean", "sequence", "text"):
        g = m[name]["catalogue"]
        for key in ("recall@20", "ndcg@10", "exposure@20", "future_share", "users"):
            assert key in g, (name, key)
        assert 0 <= g["exposure@20"] <= 6 / 20 and g["future_share"] == pytest.approx(0.75)
        assert g["exposure_meets_future_share"] is False  # at most 6 of 20 can be new
    assert cold_items["protocol"]["sequence_model"]["epochs"] >= 1
    names = [t["name"] for t in cold_items["targets"]]
    assert "candidates lift, mean" in names and "exposure@20 >= future share, text" in names
    assert any(n.startswith("candidates lift, best") for n in names)
    for t in cold_items["targets"]:
        assert set(t) == {"name", "measured", "threshold", "met"}

    result = {"cold_items": cold_items}
    json.dumps(result)
    table = format_cold_table(cold_items)
    assert "content" in table and "random" in table and "met" in table
    write_plot(result, tmp_path / "cold.png")  # the cold panel alone (--cold-only)
    assert (tmp_path / "cold.png").read_bytes()[:4] == b"\x89PNG"
