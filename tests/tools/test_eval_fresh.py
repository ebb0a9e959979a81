"""`recdb eval --fresh N`: stale / folded / re-encoded user vectors, on the synthetic topic
clusters of test_evaluate.py.

Users whose taste drifts (older events in one cluster, the newest ones and the test target
in another) make the three states tell apart: without the newest events the vector points
at the old cluster; rerank()'s fold of the events put back (no worker run) finds the new
one as the re-encoded vector does. The run must end in the normal test state.
"""

from __future__ import annotations

import json
import uuid

import pytest

from recdb.datasets.movielens import Movie, Rating
from recdb.db import connect, scratch
from recdb.tools.eval import format_table, rerank_rankings, run_evaluation, write_plot
from recdb.tools.eval import fresh as fresh_eval
from recdb.tools.eval.protocol import split_ratings
from tests.support.tiny_model import tiny_text_encoder
from tests.tools.test_evaluate import PER_CLUSTER, TOY_KNOBS, WORDS

USERS = 12


def drifting() -> tuple[list[Movie], list[Rating]]:
    """Per user: 3 items of one cluster, then 3 of another (the last one the test target)."""
    items = [
        Movie(c * 100 + j, f"{w} {w} {w} {w} part {j}", None, [w])
        for c, w in enumerate(WORDS)
        for j in range(PER_CLUSTER)
    ]
    ratings = []
    for u in range(1, USERS + 1):
        old, new = u % len(WORDS), (u + 1 + u // len(WORDS)) % len(WORDS)
        picks = [(old, (u + s) % PER_CLUSTER) for s in range(3)]
        picks += [(new, (u + s) % PER_CLUSTER) for s in range(3)]
        for step, (c, j) in enumerate(picks):
            ratings.append(Rating(u, c * 100 + j, 5.0, 880_000_000 + 3600 * u + 60 * step))
    return items, ratings


@pytest.fixture
def databases(server_url, template_url):
    """Two database names for run_evaluation to create; dropped afterwards."""
    names = [f"recdb_eval_fresh_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    yield names
    for name in names:
        scratch.drop(server_url, name)


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def test_fold_finds_what_the_stale_vector_misses_and_the_run_ends_as_without_it(
    server_url, databases, encoder, tmp_path
):
    items, ratings = drifting()
    # TOY_KNOBS: in a 36-item toy most items nobody rated are brand-new to the content
    # prior; this test is about the fold, so it is off (tests/worker/test_content_prior.py)
    kw = dict(
        encoders=["mean"],
        text_encoder=encoder,
        device="cpu",
        progress=False,
        dataset="drift",
        knobs=TOY_KNOBS,
    )
    with_fresh = run_evaluation(server_url, items, ratings, database=databases[0], fresh=2, **kw)
    without = run_evaluation(server_url, items, ratings, database=databases[1], **kw)

    m = with_fresh["methods"]["mean"]
    f = m["fresh"]
    assert f["n"] == 2 and f["events"] == 2 * USERS and f["folded_events"] == 2 * USERS
    assert "fresh" not in m["valid"]  # the test phase only
    stale, fold, encoded = (f[s]["ndcg@10"] for s in ("stale", "fold", "encoded"))
    # the stale vector points at the old cluster; the fold, like re-encoding, at the new one
    assert f["encoded"]["hr@10"] == 1.0 and f["fold"]["hr@10"] == 1.0, f
    assert stale < fold - 0.1, f
    assert fold == pytest.approx(encoded, abs=0.05), f
    assert f["fold_over_encoded"] == pytest.approx(fold / encoded, abs=1e-3)
    for s in fresh_eval.STATES:
        assert f[s]["users"] == USERS
    # re-encoded with every event back: the normal test measurement, in both runs
    for key in ("hr@10", "ndcg@10", "mrr@10", "coverage@10"):
        assert f["encoded"][key] == pytest.approx(m[key]), key
        assert m[key] == pytest.approx(without["methods"]["mean"][key]), key
    assert with_fresh["protocol"]["fresh"]["n"] == 2 and without["protocol"]["fresh"] is None
    assert "fresh" not in without["methods"]["mean"]

    # The database ends in the normal test state: every history event, nothing queued,
    # and the same full rankings as the run without --fresh.
    history = sum(len(s.history) for s in split_ratings(ratings).values())
    urls = [scratch.with_database(server_url, name) for name in databases]
    with connect(urls[0], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM recdb.events").fetchone()[0] == history
        assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM recdb.covisit_queue").fetchone()[0] == 0
    users = list(range(1, USERS + 1))
    full = [rerank_rankings(url, users, len(items), threads=1) for url in urls]
    assert full[0] == full[1]

    # Outputs: the console table, JSON, the plot with its second panel
    table = fresh_eval.format_table(with_fresh)
    assert "stale" in table and "mean" in table and f"{f['fold_over_encoded']:.3f}" in table
    assert fresh_eval.format_table(without) == ""
    assert "mean" in format_table(with_fresh)
    json.dumps(with_fresh)
    for result, name in ((with_fresh, "fresh.png"), (without, "plain.png")):
        write_plot(result, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_fresh_must_not_be_negative(server_url, encoder):
    with pytest.raises(ValueError, match="fresh must be >= 0"):
        run_evaluation(server_url, [], [], encoders=["mean"], text_encoder=encoder, fresh=-1)
