"""The content prior: an item nobody has interacted with yet ranks by the popularity its
vector predicts (recdb.worker.content_prior, fitted by the maintenance), in
personalized and cold-start rankings, and never for items with popularity of their own.

Catalogue: topic A (axis 0) items are watched by many users, topic B (axis 1) items by
one; two brand-new items, one in each topic, have no events at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from recdb.worker import content_prior
from recdb.worker.maintenance import run_jobs
from recdb.worker.sql import q
from tests.support.builders import add_events, add_items, axis, ids, rerank, set_user_vector, unit

NEW_A, NEW_B = 900, 901


def test_ridge_recovers_a_linear_popularity_and_picks_its_strength_out_of_sample():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16))
    w = rng.normal(size=16)
    y = x @ w + 0.3 + rng.normal(scale=0.01, size=400)
    got_w, bias, lam = content_prior.fit_ridge(x, y)
    assert np.allclose(got_w, w, atol=0.02) and abs(bias - 0.3) < 0.02
    assert lam <= 0.1  # almost no noise: leave-one-out prefers a weak ridge
    noisy = rng.normal(size=400)  # nothing to learn: a strong ridge wins
    assert content_prior.fit_ridge(x, noisy)[2] >= 10.0


@pytest.mark.parametrize("n, dim", [(30, 8), (12, 20)])  # more items than dims, and fewer
def test_ridge_is_the_exact_solution_with_the_brute_force_leave_one_out_choice(n, dim):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, dim))
    y = x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n)

    def ridge(xs: np.ndarray, ys: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
        mx, my = xs.mean(axis=0), ys.mean()
        xc = xs - mx
        w = np.linalg.solve(xc.T @ xc + lam * np.eye(dim), xc.T @ (ys - my))
        return w, my - mx @ w

    def loo(lam: float) -> float:
        errs = []
        for i in range(n):
            keep = np.arange(n) != i
            w, b = ridge(x[keep], y[keep], lam)
            errs.append((y[i] - x[i] @ w - b) ** 2)
        return float(np.mean(errs))

    want_lam = min(content_prior.RIDGES, key=loo)
    got_w, bias, lam = content_prior.fit_ridge(x, y)
    want_w, want_b = ridge(x, y, want_lam)
    assert lam == want_lam
    assert np.allclose(got_w, want_w, atol=1e-5) and abs(bias - want_b) < 1e-5


@pytest.fixture
def catalogue(conn):
    items = [{"item_id": i, "embedding": axis(0, noise=0.3, seed=i)} for i in range(1, 21)]
    items += [{"item_id": i, "embedding": axis(1, noise=0.3, seed=i)} for i in range(21, 41)]
    items += [
        {"item_id": NEW_A, "embedding": axis(0, noise=0.05, seed=900)},
        {"item_id": NEW_B, "embedding": axis(1, noise=0.05, seed=901)},
    ]
    add_items(conn, items)
    for user in range(1, 31):  # topic A: everyone; topic B: a user each
        add_events(conn, user, range(1, 21))
        add_events(conn, 100 + user, [20 + (user % 20) + 1])
    conn.execute("UPDATE recdb.settings SET covisit_weight = 0, diversity_penalty = 0")
    # the user leans slightly towards topic B: similarity alone prefers NEW_B
    vec = unit(axis(2) + 0.3 * axis(1) + 0.1 * axis(0))
    set_user_vector(conn, 7777, vec)
    return vec


def _fit(conn):
    conn.autocommit = False
    try:
        return run_jobs(conn)
    finally:
        conn.commit()
        conn.autocommit = True


def test_a_new_item_ranks_by_the_popularity_its_vector_predicts(conn, catalogue):
    before = ids(rerank(conn, 7777, k=2, candidates=[NEW_A, NEW_B]))
    assert before == [NEW_B, NEW_A]  # no prior yet: similarity only
    done = _fit(conn)
    assert done["content_prior"] == 40  # fitted on the items that have popularity
    row = conn.execute("SELECT model_id, items FROM recdb.content_prior").fetchone()
    assert row == (None, 40)  # text space (no model served)
    assert ids(rerank(conn, 7777, k=2, candidates=[NEW_A, NEW_B])) == [NEW_A, NEW_B]
    # a user with no vector: cold-start order, the predicted popularity for new items
    cold = rerank(conn, 424242, k=2, candidates=[NEW_B, NEW_A])
    assert ids(cold) == [NEW_A, NEW_B] and {r[4] for r in cold} == {"new"}
    # the knob turns it off
    conn.execute("UPDATE recdb.settings SET content_prior_weight = 0")
    assert ids(rerank(conn, 7777, k=2, candidates=[NEW_A, NEW_B])) == [NEW_B, NEW_A]


def test_items_with_popularity_of_their_own_never_get_the_prior(conn, catalogue):
    _fit(conn)
    # Item 21 (topic B, one user) has its own small popularity; NEW_A stands in with the
    # prior. Give both the same vector: only the priors differ.
    conn.execute(
        "UPDATE recdb.items SET embedding = (SELECT embedding FROM recdb.items WHERE item_id = 21)"
        " WHERE item_id = %s", (NEW_A,),
    )  # fmt: skip
    scores = dict((r[1], r[2]) for r in rerank(conn, 7777, k=2, candidates=[21, NEW_A]))
    pop21, w = conn.execute(
        "SELECT p.score, s.popularity_weight FROM recdb.item_popularity p, recdb.settings s"
        " WHERE p.item_id = 21"
    ).fetchone()
    sim = conn.execute(
        "SELECT 1 - (i.embedding <=> u.embedding) FROM recdb.items i, recdb.users u"
        " WHERE i.item_id = 21 AND u.user_id = 7777"
    ).fetchone()[0]
    assert scores[21] == pytest.approx(sim + w * pop21, abs=1e-5)  # its own popularity only
    assert scores[NEW_A] > sim + 0.05  # the same vector, plus the prior


def test_an_item_whose_events_left_the_window_keeps_a_zero_row(conn, catalogue):
    _fit(conn)
    conn.execute("UPDATE recdb.settings SET popularity_half_life = '1 hour'")
    conn.execute(
        "UPDATE recdb.events SET occurred_at = now() - interval '30 days' WHERE item_id = 21"
    )
    _fit(conn)
    assert conn.execute(
        "SELECT raw, score FROM recdb.item_popularity WHERE item_id = 21"
    ).fetchone() == (0, 0)
    assert (
        conn.execute(
            "SELECT count(*) FROM recdb.item_popularity WHERE item_id IN (%s, %s)", (NEW_A, NEW_B)
        ).fetchone()[0]
        == 0
    )


def test_brand_new_items_get_their_share_of_catalogue_results(conn, catalogue):
    _fit(conn)
    user = 8888
    # a third topic: the noisy warm items lean into it more than the two new ones
    set_user_vector(conn, user, axis(2))
    # a weak prior: on score alone the new items would not make the top 5
    conn.execute(
        "UPDATE recdb.settings SET explore_share = 0, candidate_factor = 50,"
        " content_prior_weight = 0.01"
    )
    order = ids(rerank(conn, user, k=42))  # the whole catalogue by score, nothing kept
    assert order.index(NEW_A) >= 5 and order.index(NEW_B) >= 5

    def expected(new: set[int]) -> tuple[int, list[int]]:
        best_new = next(i for i in order if i in new)
        rest = [i for i in order if i != best_new]
        return best_new, sorted(set(rest[:4]) | {best_new}, key=order.index)

    # the first explore_after (10) results are never given up: k = 5 explores nothing
    conn.execute("UPDATE recdb.settings SET explore_share = 0.2")
    assert ids(rerank(conn, user, k=5)) == order[:5]
    conn.execute("UPDATE recdb.settings SET explore_after = 4")  # 1 of 5 slots
    top5 = rerank(conn, user, k=5)
    kept, want = expected({NEW_A, NEW_B})
    assert ids(top5) == want
    assert [r[4] for r in top5 if r[1] == kept] == ["new"]
    assert [r[2] for r in top5] == sorted((r[2] for r in top5), reverse=True)

    # Once someone interacts with it (and the maintenance ran), it ranks on its own merits
    # and the slot goes to the item still nobody has touched.
    add_events(conn, 5555, [kept])
    _fit(conn)
    other = ({NEW_A, NEW_B} - {kept}).pop()
    assert conn.execute("SELECT array_agg(item_id) FROM recdb.new_items").fetchone()[0] == [other]
    conn.execute("UPDATE recdb.settings SET explore_share = 0")
    order = ids(rerank(conn, user, k=42))
    conn.execute("UPDATE recdb.settings SET explore_share = 0.2")
    assert order.index(other) >= 5
    assert ids(rerank(conn, user, k=5)) == expected({other})[1]


def _listed(conn) -> dict[int, float]:
    return dict(conn.execute("SELECT item_id, prior FROM recdb.new_items").fetchall())


def _rebuilt(conn) -> dict[int, float]:
    """What a rebuild from every item lists now (the repair path), left unapplied."""
    conn.autocommit = False
    try:
        conn.execute(q("refresh_new_items"))
        return _listed(conn)
    finally:
        conn.rollback()
        conn.autocommit = True


def test_a_new_item_is_explored_as_soon_as_it_has_a_vector(conn, catalogue):
    _fit(conn)
    new_c = 902
    add_items(conn, [{"item_id": new_c, "title": "no vector yet"}])
    assert new_c not in _listed(conn)
    # the worker writes its vector: listed at once, scored by the prior in place
    conn.execute(
        "UPDATE recdb.items SET embedding = %s, embedded_at = now() WHERE item_id = %s",
        (axis(0, noise=0.05, seed=902).astype(np.float32), new_c),
    )
    listed = _listed(conn)
    assert listed == pytest.approx(_rebuilt(conn)) and new_c in listed
    assert listed[new_c] > 0.5  # topic A: the popular one
    user = 8888
    set_user_vector(conn, user, axis(2))
    conn.execute("UPDATE recdb.settings SET explore_share = 0.2, explore_after = 4")
    got = [r[1] for r in rerank(conn, user, k=5) if r[4] == "new"]
    assert got[0] == new_c  # the best-scored new item, before any maintenance
    # its vector goes: unlisted at once
    conn.execute("UPDATE recdb.items SET embedding = NULL WHERE item_id = %s", (new_c,))
    assert new_c not in _listed(conn)


def test_the_kept_list_of_new_items_equals_a_rebuild_after_every_kind_of_change(conn, catalogue):
    rng = np.random.default_rng(7)
    _fit(conn)
    assert _listed(conn) == pytest.approx(_rebuilt(conn))
    next_id = 1000
    for step in range(6):
        # items arrive with and without vectors; some get one later, one loses its own
        for _ in range(4):
            vec = (
                axis(int(rng.integers(0, 3)), noise=0.2, seed=next_id)
                if rng.random() < 0.7
                else None
            )
            add_items(conn, [{"item_id": next_id, "embedding": vec}])
            next_id += 1
        bare = conn.execute(
            "SELECT item_id FROM recdb.items WHERE embedding IS NULL ORDER BY item_id LIMIT 1"
        ).fetchone()
        if bare:
            conn.execute(
                "UPDATE recdb.items SET embedding = %s, embedded_at = now() WHERE item_id = %s",
                (axis(1, noise=0.2, seed=step).astype(np.float32), bare[0]),
            )
        listed = sorted(_listed(conn))
        # a re-encoding (a new vector, a new embedded_at), as after a model activation
        conn.execute(
            "UPDATE recdb.items SET embedding = %s, embedded_at = now() WHERE item_id = %s",
            (axis(0, noise=0.2, seed=100 + step).astype(np.float32), listed[0]),
        )
        conn.execute("UPDATE recdb.items SET embedding = NULL WHERE item_id = %s", (listed[-1],))
        # an app edit that leaves the vector alone
        conn.execute("UPDATE recdb.items SET available = NOT available WHERE item_id = %s",
                     (listed[len(listed) // 2],))  # fmt: skip
        assert _listed(conn) == pytest.approx(_rebuilt(conn)), f"step {step}, before maintenance"
        # someone interacts with two listed items; one listed item is deleted
        add_events(conn, 5000 + step, listed[1:3])
        conn.execute("DELETE FROM recdb.items WHERE item_id = %s", (listed[3],))
        _fit(conn)  # the prior moves: every listed score with it
        assert _listed(conn) == pytest.approx(_rebuilt(conn)), f"step {step}, after maintenance"


def test_a_stale_row_estimate_never_starves_the_prior_of_its_sample(conn, catalogue):
    # the planner believes recdb.popularity holds 10^7 rows (analysed before a mass
    # delete): the sample first reads a sliver of the pages, then every page
    _fit(conn)
    conn.execute("UPDATE pg_class SET reltuples = 1e7 WHERE oid = 'recdb.popularity'::regclass")
    assert content_prior.sample_percent(1e7) < 1
    conn.autocommit = False
    try:
        assert content_prior.refit(conn) == 40
    finally:
        conn.commit()
        conn.autocommit = True


def test_a_full_refresh_rebuilds_the_list_after_writes_the_trigger_missed(conn, catalogue):
    _fit(conn)
    conn.execute("ALTER TABLE recdb.items DISABLE TRIGGER USER")
    try:
        add_items(conn, [{"item_id": 903, "embedding": axis(0, noise=0.05, seed=903)}])
    finally:
        conn.execute("ALTER TABLE recdb.items ENABLE TRIGGER USER")
    _fit(conn)  # the step re-scores what is listed, it does not look for what is not
    assert 903 not in _listed(conn)
    conn.autocommit = False
    try:
        run_jobs(conn, full=True)
    finally:
        conn.commit()
        conn.autocommit = True
    listed = _listed(conn)
    assert 903 in listed and listed == pytest.approx(_rebuilt(conn))


def test_the_refit_rescores_the_listed_items_a_chunk_per_transaction(conn, catalogue):
    """On a shop with tens of thousands of untouched items, one re-scoring pass was a
    transaction of seconds beside the user batches: the refit commits the prior, then
    re-scores `chunk` listed items per transaction and calls `between` after each (where
    the maintenance yields to waiting users). The list ends as a rebuild gives it."""
    add_items(conn, [{"item_id": 950 + i, "embedding": axis(i % 3, noise=0.2, seed=950 + i)}
                     for i in range(7)])  # fmt: skip
    _fit(conn)
    listed = sorted(_listed(conn))
    assert len(listed) == 9
    for user in range(200, 230):  # topic B turns popular: the prior moves, every score too
        add_events(conn, user, range(21, 41))
    add_events(conn, 300, [listed[0]])  # ... and a listed item is no longer new
    conn.execute("SELECT recdb.refresh_popularity()")
    before = _listed(conn)
    states: list[str] = []
    conn.autocommit = False
    try:
        fitted = content_prior.refit(
            conn, between=lambda: states.append(conn.info.transaction_status.name), chunk=3
        )
    finally:
        conn.commit()
        conn.autocommit = True
    assert fitted > 0
    # after the fit, after each of the 3 chunks of the 9 listed items, after the empty one
    assert states == ["IDLE"] * 5
    after = _listed(conn)
    assert listed[0] not in after
    assert all(abs(after[i] - before[i]) > 1e-6 for i in after)
    assert after == pytest.approx(_rebuilt(conn))
