"""Hand-checked values for the offline metrics, the leave-one-out split and the baselines."""

import math

import pytest

from recdb.tools.eval.metrics import (
    Split,
    catalog_coverage,
    chronological_leave_one_out,
    evaluate,
    hit_rate_at_k,
    item_knn_ranking,
    mrr_at_k,
    ndcg_at_k,
    popularity_ranking,
)

RANKED = [10, 20, 30, 40, 50]


def test_hit_rank_one():
    assert hit_rate_at_k(RANKED, 10, 3) == 1.0
    assert ndcg_at_k(RANKED, 10, 3) == 1.0
    assert mrr_at_k(RANKED, 10, 3) == 1.0


def test_hit_rank_three():
    assert hit_rate_at_k(RANKED, 30, 3) == 1.0
    assert ndcg_at_k(RANKED, 30, 3) == pytest.approx(1 / math.log2(4)) == pytest.approx(0.5)
    assert mrr_at_k(RANKED, 30, 3) == pytest.approx(1 / 3)


def test_miss_beyond_k_and_absent():
    for target in (40, 99):
        assert hit_rate_at_k(RANKED, target, 3) == 0.0
        assert ndcg_at_k(RANKED, target, 3) == 0.0
        assert mrr_at_k(RANKED, target, 3) == 0.0
    assert hit_rate_at_k([], 1, 10) == 0.0


def test_coverage():
    assert catalog_coverage([[1, 2, 3], [3, 4, 9]], n_catalog=10, k=2) == pytest.approx(0.4)
    assert catalog_coverage([], n_catalog=10, k=2) == 0.0
    assert catalog_coverage([[1]], n_catalog=0, k=2) == 0.0


def test_evaluate_aggregates_and_names_keys_by_k():
    rankings = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]}
    targets = {"a": 1, "b": 6, "c": 99, "d": 2, "e": None}  # d has no ranking, e no target
    res = evaluate(rankings, targets, n_catalog=20, k=3)
    assert set(res) == {"hr@3", "ndcg@3", "mrr@3", "coverage@3", "users"}
    assert res["users"] == 4
    assert res["hr@3"] == pytest.approx(2 / 4)
    assert res["ndcg@3"] == pytest.approx((1 + 0.5) / 4)
    assert res["mrr@3"] == pytest.approx((1 + 1 / 3) / 4)
    assert res["coverage@3"] == pytest.approx(9 / 20)
    assert "hr@10" in evaluate(rankings, targets, n_catalog=20)


def test_leave_one_out_orders_by_time_with_stable_ties_and_short_users():
    rows = [
        ("u", "c", 30),
        ("u", "a", 10),
        ("v", "x", 5),
        ("u", "b", 20),
        ("u", "d", 30),  # tie with c: listed later, so counts as later
        ("u", "e", 5),
        ("w", "p", 1),
        ("w", "q", 2),
        ("z", "only", 7),
    ]
    sp = chronological_leave_one_out(rows)
    assert sp["u"] == Split(train=["e", "a", "b"], valid="c", test="d")
    assert sp["u"].history == ["e", "a", "b", "c"]
    assert sp["w"] == Split(train=["p", "q"], valid=None, test=None)
    assert sp["z"] == Split(train=["only"])
    assert sp["v"].test is None and sp["v"].history == ["x"]


def test_leave_one_out_three_interactions_and_duplicates():
    sp = chronological_leave_one_out([(1, 7, 1), (1, 7, 2), (1, 8, 3)])
    assert sp[1] == Split(train=[7], valid=7, test=8)


def test_popularity_excludes_own_history_and_breaks_ties_by_id():
    train = {"a": [1, 2], "b": [1, 3], "c": [1, 2, 4], "d": []}
    items = [5, 4, 3, 2, 1]
    recs = popularity_ranking(train, items, k=3)
    assert recs["d"] == [1, 2, 3]  # counts 3, 2, then 3 and 4 tie at 1 -> smaller id
    assert recs["a"] == [3, 4, 5]
    assert recs["c"] == [3, 5]  # only two unseen items left


def test_item_knn_recommends_co_occurring_item():
    # items 1 and 2 always co-occur, 3 and 4 always co-occur; 5 is popular but unrelated
    train = {
        "a": [1, 2, 5],
        "b": [1, 2],
        "c": [3, 4, 5],
        "d": [3, 4],
        "e": [5],
        "f": [5],
        "q1": [1],
        "q3": [3],
    }
    recs = item_knn_ranking(train, range(1, 6), k=2, neighbours=0)
    assert recs["q1"][0] == 2
    assert recs["q3"][0] == 4
    assert 1 not in recs["q1"]
    # pruning to 1 neighbour keeps the strongest link
    assert item_knn_ranking(train, range(1, 6), k=1, neighbours=1)["q1"] == [2]
    # deterministic
    assert recs == item_knn_ranking(train, range(1, 6), k=2, neighbours=0)
