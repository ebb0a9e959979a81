"""`recdb eval` end to end on a synthetic catalogue where the next item is predictable.

Items come in topic clusters whose titles share a word ("apple apple apple apple part 3"),
so even the tiny random BERT puts each cluster in its own corner of the vector space, and
every user consumes items of a single cluster: the real worker + rerank() must find the
held-out item in the top 10 for every user, while popularity (skewed towards one cluster
by a few fans) and a deliberately wrong ranking must score clearly lower.
"""

from __future__ import annotations

import json
import uuid

import pytest

from recdb.datasets.movielens import Movie, Rating
from recdb.db import scratch
from recdb.sequence import TrainConfig
from recdb.tools.eval import (
    format_table,
    metrics,
    rerank_rankings,
    run_evaluation,
    write_plot,
)
from tests.support.tiny_model import tiny_text_encoder

WORDS = ("apple", "river", "engine", "violin", "tiger", "castle")
PER_CLUSTER = 6
FANS = 4  # extra users who all watch cluster 0: makes popularity point the wrong way
TINY_SEQUENCE = TrainConfig(
    epochs=20, max_len=8, hidden=16, layers=1, heads=2, dropout=0.1, lr=5e-3, min_count=2,
    patience=20, device="cpu", threads=1,
)  # fmt: skip
# The content prior ranks items nobody has rated by the popularity their text predicts; in
# these 36-item toys that is a third of the catalogue and the fans make it point at cluster
# 0 on purpose. The tests here are about the protocol, so it is off; the prior has its own
# tests (tests/worker/test_content_prior.py, tests/tools/test_eval_cold.py).
TOY_KNOBS = {"settings": {"content_prior_weight": 0.0}}


def synthetic() -> tuple[list[Movie], list[Rating]]:
    items = [
        Movie(c * 100 + j, f"{w} {w} {w} {w} part {j}", None, [w])
        for c, w in enumerate(WORDS)
        for j in range(PER_CLUSTER)
    ]
    ratings = []
    users = [(u, u % len(WORDS)) for u in range(1, 13)] + [(100 + f, 0) for f in range(FANS)]
    for u, c in users:
        # 5 of the cluster's 6 items, a different rotation per user; strictly increasing time
        for step in range(5):
            j = (u + step) % PER_CLUSTER
            ratings.append(Rating(u, c * 100 + j, 5.0, 880_000_000 + 3600 * u + 60 * step))
    return items, ratings


@pytest.fixture
def eval_db(server_url, template_url):
    """A database name for run_evaluation to create; dropped afterwards."""
    name = f"recdb_eval_test_{uuid.uuid4().hex[:8]}"
    yield name
    scratch.drop(server_url, name)


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def test_encoders_find_the_next_item_and_wrong_rankings_do_not(
    server_url, eval_db, encoder, tmp_path
):
    items, ratings = synthetic()
    result = run_evaluation(
        server_url,
        items,
        ratings,
        # sequence between the others: they must get their text-space vectors back
        encoders=["mean", "sequence", "text"],
        database=eval_db,
        text_encoder=encoder,
        device="cpu",
        progress=False,
        dataset="synthetic",
        sequence_config=TINY_SEQUENCE,
        knobs=TOY_KNOBS,
    )
    m = result["methods"]
    assert set(m) == {"popularity", "item-knn", "popularity-rerank", "mean", "text", "sequence"}
    n_users = 12 + FANS
    for name in ("mean", "text"):
        assert m[name]["hr@10"] == 1.0, (name, m[name])
        assert m[name]["valid"]["hr@10"] == 1.0, (name, m[name]["valid"])
        assert m[name]["users"] == n_users and m[name]["seconds"] > 0
    # trained on 3 events per user, it still finds the cluster, and beats popularity
    assert m["sequence"]["hr@10"] >= 0.75, m["sequence"]
    assert m["sequence"]["ndcg@10"] > m["popularity"]["ndcg@10"]
    seq = result["protocol"]["sequence_model"]
    assert seq["epochs"] >= 1 and seq["seconds_per_epoch"] > 0 and seq["device"] == "cpu"
    assert m["sequence"]["train_seconds"] > 0
    # popularity is pulled towards cluster 0 by the fans; the others rarely hit
    assert m["popularity"]["hr@10"] <= 0.6
    assert m["popularity-rerank"]["hr@10"] <= 0.6
    for key in ("hr@10", "ndcg@10", "mrr@10", "coverage@10", "users", "seconds"):
        assert key in m["mean"]
    p = result["protocol"]
    assert p["users"] == n_users and p["items"] == len(items) and p["k"] == 10
    assert p["knobs_in_force"]["settings"]["popularity_weight"] is not None

    # The same database, read back by hand: rerank() for each user vs a deliberately wrong
    # ranking, through the same metric code.
    url = scratch.with_database(server_url, eval_db)
    users = sorted({r.user_id for r in ratings})
    full = rerank_rankings(url, users, len(items), threads=2)  # every unseen item, ranked
    right = {u: r[:10] for u, r in full.items()}
    wrong = {u: r[::-1][:10] for u, r in full.items()}  # the same ranking, upside down
    splits = metrics.chronological_leave_one_out(
        (r.user_id, r.item_id, r.timestamp) for r in ratings
    )
    targets = {u: s.test for u, s in splits.items()}
    assert metrics.evaluate(right, targets, len(items))["hr@10"] == 1.0
    assert metrics.evaluate(wrong, targets, len(items))["hr@10"] == 0.0

    # Outputs: table, JSON-serialisable, PNG
    table = format_table(result)
    assert "mean" in table and "item-knn" in table
    json.dumps(result)
    write_plot(result, tmp_path / "eval.png")
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"


def test_runs_are_reproducible_and_sampling_is_seeded(server_url, eval_db, encoder):
    items, ratings = synthetic()
    kw = dict(
        encoders=["mean"],
        database=eval_db,
        text_encoder=encoder,
        device="cpu",
        progress=False,
        validate=False,
        users=6,
        seed=3,
    )
    a = run_evaluation(server_url, items, ratings, **kw)
    b = run_evaluation(server_url, items, ratings, **kw)

    def strip(r):
        return {
            n: {k: v for k, v in m.items() if "seconds" not in k and "ms" not in k}
            for n, m in r["methods"].items()
        }

    assert strip(a) == strip(b)
    assert a["protocol"]["users"] == 6 and a["protocol"]["users_sampled"]
    assert "valid" not in a["methods"]["mean"]


def test_knobs_are_applied_and_recorded(server_url, eval_db, encoder):
    items, ratings = synthetic()
    knobs = {
        "settings": {"popularity_weight": 0.5, "candidate_factor": 10},
        "event_kinds": {"rate": {"half_life": "7 days"}},
        "encoders": {"mean": {"settings": {"covisit_weight": 0.75}}},
    }

    def run(knobs: dict) -> dict:
        return run_evaluation(
            server_url,
            items,
            ratings,
            encoders=["mean"],
            database=eval_db,
            text_encoder=encoder,
            device="cpu",
            progress=False,
            validate=False,
            knobs=knobs,
        )

    r = run(knobs)
    p = r["protocol"]
    assert p["knobs_set"] == knobs
    assert p["knobs_in_force"]["settings"]["popularity_weight"] == 0.5
    assert p["knobs_in_force"]["settings"]["candidate_factor"] == 10
    assert p["knobs_in_force"]["event_kinds"]["rate"]["half_life"] == "7 days"
    # a per-encoder override applies while that encoder runs, then the base comes back
    assert r["methods"]["mean"]["knobs"] == {"covisit_weight": 0.75}
    assert p["knobs_in_force"]["settings"]["covisit_weight"] == 2.0
    with pytest.raises(ValueError, match="for encoder 'mean': nope"):
        run({"encoders": {"mean": {"settings": {"nope": 1}}}})
    with pytest.raises(ValueError, match="unknown knob"):
        run({"settings": {"nope": 1}})


def test_sequence_seeds_serve_and_score_every_seed(server_url, eval_db, encoder):
    items, ratings = synthetic()
    result = run_evaluation(
        server_url,
        items,
        ratings,
        encoders=["sequence", "mean"],  # mean after: it gets the text space back
        database=eval_db,
        text_encoder=encoder,
        device="cpu",
        progress=False,
        dataset="synthetic",
        sequence_config=TINY_SEQUENCE,
        knobs=TOY_KNOBS,
        sequence_seeds=2,
    )
    m = result["methods"]
    seq = m["sequence"]
    for seeds in (seq["seeds"], seq["valid"]["seeds"]):
        assert seeds["n"] == 2 and seeds["seeds"] == [0, 1]
        assert seeds["ndcg@10"][0] == pytest.approx(
            (seq if seeds is seq["seeds"] else seq["valid"])["ndcg@10"], abs=1e-6
        )  # the row is the first seed's ranking
        vals = seeds["ndcg@10"]
        assert seeds["ndcg@10_mean"] == pytest.approx(sum(vals) / 2, abs=1e-6)
        assert seeds["hr@10_std"] >= 0
    assert min(seq["seeds"]["hr@10"]) >= 0.75  # both models find the cluster
    models = result["protocol"]["sequence_models"]
    assert [t["seed"] for t in models] == [0, 1]
    assert all(t["epochs"] >= 1 and t["train_seconds"] > 0 for t in models)
    assert m["mean"]["hr@10"] == 1.0  # the trained models' item space did not leak into it
    assert "sequence: ndcg@10" in format_table(result)
    json.dumps(result)
    with pytest.raises(ValueError, match="sequence_seeds"):
        run_evaluation(server_url, items, ratings, database=eval_db, text_encoder=encoder,
                       sequence_seeds=0)  # fmt: skip


def test_cli_sequence_seeds_option(monkeypatch, capsys):
    import argparse

    from recdb.tools.eval import cli

    def parse(argv):
        parser = argparse.ArgumentParser()
        cli.configure(parser)
        return parser, parser.parse_args(argv)

    monkeypatch.delenv("RECDB_EVAL_SEQUENCE_SEEDS", raising=False)
    parser, args = parse([])
    assert args.sequence_seeds == 1
    assert "RECDB_EVAL_SEQUENCE_SEEDS" in parser.format_help()
    assert parse(["--sequence-seeds", "3"])[1].sequence_seeds == 3
    monkeypatch.setenv("RECDB_EVAL_SEQUENCE_SEEDS", "2")
    assert parse([])[1].sequence_seeds == 2
    # main() hands it to run_evaluation, and refuses 0 before any work
    seen: dict = {}

    def fake_run(*a, **kw):
        seen.update(kw)
        return {
            "protocol": {"dataset": "x", "users": 0, "items": 0, "k": 10,
                         "timings_s": {"wall": 0.0}},
            "methods": {},
        }  # fmt: skip

    import recdb.datasets.movielens
    import recdb.db

    monkeypatch.setattr(recdb.datasets.movielens, "read_movielens", lambda path: ([], []))
    monkeypatch.setattr(recdb.db, "database_url", lambda: "postgresql://unused")
    monkeypatch.setattr(cli, "run_evaluation", fake_run)
    monkeypatch.setattr(cli, "resolve_knobs", lambda knobs: {})
    assert cli.main(parse(["--cold-items", "0", "--sasrec-ce-seeds", "0"])[1]) == 0
    assert seen["sequence_seeds"] == 2
    seen.clear()
    assert cli.main(parse(["--cold-items", "0", "--sequence-seeds", "0"])[1]) == 2
    assert not seen and "--sequence-seeds" in capsys.readouterr().err
