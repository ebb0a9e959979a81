"""The `sasrec-ce` baseline of `recdb eval` (recdb.tools.eval.sasrec_ce), in pure Python: it
learns a sequential rule popularity cannot see, never reads the test targets, is
reproducible under a seed, and the CLI can turn it off. No PostgreSQL: the baseline runs on
the eval's split in memory, recorded through EvalRun.record_sasrec_ce as in a real run."""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from typing import Any

import pytest

from recdb.datasets.movielens import Rating
from recdb.tools.eval import cli, metrics, report
from recdb.tools.eval.protocol import phases, split_ratings
from recdb.tools.eval.run import EvalRun, sasrec_ce_baseline
from recdb.tools.eval.sasrec_ce import (
    DEFAULT_GRID,
    SasrecCeConfig,
    format_grid,
    parse_grid,
)

N_ITEMS, N_USERS = 50, 200
ITEMS = [1000 + i for i in range(N_ITEMS)]  # ids are not catalogue rows
# Tiny and fast on one thread; a higher learning rate than the default 1e-3 so a few
# epochs are enough for the rule.
TINY = SasrecCeConfig(
    seeds=1, grid=((8, 0.2),), max_epochs=25, patience=5, hidden=16, lr=5e-3,
    device="cpu", threads=1,
)  # fmt: skip


def synthetic(seed: int = 0) -> list[Rating]:
    """Every user walks the catalogue in order from a random start: item i is followed by
    item i+1 (mod 50), so the next item is certain from the last one, and popularity has
    nothing to go on (every item is about equally common)."""
    rng = random.Random(seed)
    out = []
    for u in range(1, N_USERS + 1):
        start, length = rng.randrange(N_ITEMS), rng.randrange(5, 16)
        for step in range(length):
            item = ITEMS[(start + step) % N_ITEMS]
            out.append(Rating(u, item, 4.0, 880_000_000 + 1000 * u + step))
    return out


def evaluation(ratings: list[Rating], cfg: SasrecCeConfig) -> EvalRun:
    """An EvalRun with only what record_sasrec_ce reads: no database, no encoders."""
    splits = split_ratings(ratings)
    users = sorted(u for u, s in splits.items() if s.test is not None)
    return EvalRun(
        url="", conn=None, ratings=ratings, splits=splits, users=users,  # type: ignore[arg-type]
        n_catalog=len(ITEMS), k=10, knobs={}, text_encoder=None, device="cpu", threads=1,
        progress=False, sequence_config=None, all_items=ITEMS, sasrec_ce_config=cfg,
    )  # fmt: skip


def test_learns_the_sequence_far_above_popularity_and_reports_every_seed():
    ratings = synthetic()
    run = evaluation(ratings, replace(TINY, seeds=2))
    test_phase = None
    for phase, _ in phases(ratings, run.splits, run.users, validate=True):
        run.record(phase, "popularity", metrics.popularity_ranking(phase.history, ITEMS), 0.0)
        run.record_sasrec_ce(phase)
        test_phase = phase
    assert test_phase is not None and test_phase.name == "test"
    out = run.sasrec_ce_outcome
    assert out is not None
    m = report.methods(run.results)
    sas, pop = m["sasrec-ce"], m["popularity"]
    assert sas["users"] == N_USERS and sas["ndcg@10"] >= 0.7, sas  # measured 0.97
    assert sas["ndcg@10"] >= 5 * pop["ndcg@10"], (sas, pop)  # measured 0.12
    # the validation number is the one early stopping selected on, through the same metric
    assert sas["valid"]["ndcg@10"] == pytest.approx(out.chosen.best_valid, abs=1e-9)
    # the test entry: every seed, mean ± std; the row is the first seed's ranking
    seeds = sas["seeds"]
    assert seeds["n"] == 2 and seeds["seeds"] == [0, 1]
    assert seeds["ndcg@10"][0] == pytest.approx(sas["ndcg@10"], abs=1e-6)
    assert min(seeds["ndcg@10"]) >= 0.5
    mean = sum(seeds["ndcg@10"]) / 2
    assert seeds["ndcg@10_mean"] == pytest.approx(mean, abs=1e-6)
    assert seeds["ndcg@10_std"] == pytest.approx(
        abs(seeds["ndcg@10"][0] - seeds["ndcg@10"][1]) / 2**0.5, abs=1e-6
    )
    # the rankings exclude the history, as every method's do
    for u, ranked in out.test_rankings[1].items():
        assert len(ranked) == 10 and not set(ranked) & set(test_phase.history[u])

    info = out.to_json()
    assert info["selected"] == {"max_len": 8, "dropout": 0.2}
    assert [s["seed"] for s in info["seeds"]] == [0, 1]
    assert info["grid"][0]["best_epoch"] >= 1 and info["seconds_per_epoch"] > 0
    table = report.format_table({"methods": m, "protocol": {"sasrec_ce": info}})
    line = next(row for row in table.splitlines() if row.startswith("sasrec-ce:"))
    assert f"{seeds['ndcg@10_mean']:.4f} ± {seeds['ndcg@10_std']:.4f}" in line
    assert "2 seeds" in line and "max_len 8" in line


def test_the_test_interactions_never_reach_training_or_selection():
    cfg = replace(TINY, grid=((4, 0.2), (8, 0.5)), max_epochs=8, patience=3)
    ratings = synthetic()
    splits = split_ratings(ratings)
    last = {u: max(i for i, r in enumerate(ratings) if r.user_id == u) for u in splits}
    changed = list(ratings)
    for i in last.values():  # every user's test item becomes another one
        r = changed[i]
        changed[i] = replace(r, item_id=ITEMS[(ITEMS.index(r.item_id) + 17) % N_ITEMS])
    new = split_ratings(changed)
    assert new.keys() == splits.keys()
    assert all(
        changed[new[u].test].item_id != ratings[s.test].item_id
        for u, s in splits.items()
        if s.test is not None
    )

    def baseline(rs: list[Rating]) -> Any:
        users = sorted(u for u, s in split_ratings(rs).items() if s.test is not None)
        return sasrec_ce_baseline(rs, split_ratings(rs), users, ITEMS, cfg)

    a, b = baseline(ratings), baseline(changed)
    assert [t.curve for t in a.grid] == [t.curve for t in b.grid]  # per-epoch validation
    assert _without_times(a) == _without_times(b)  # best epochs, validation NDCG
    assert (a.chosen.max_len, a.chosen.dropout) == (b.chosen.max_len, b.chosen.dropout)
    assert a.valid_rankings == b.valid_rankings
    assert a.test_rankings == b.test_rankings  # the test input is train + validation only


def _without_times(outcome: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in g.items() if "seconds" not in k} for g in outcome.to_json()["grid"]]


def test_a_seed_gives_the_same_rankings_and_another_seed_does_not():
    cfg = replace(TINY, max_epochs=6)
    ratings = synthetic()
    splits = split_ratings(ratings)
    users = sorted(u for u, s in splits.items() if s.test is not None)
    a = sasrec_ce_baseline(ratings, splits, users, ITEMS, cfg)
    b = sasrec_ce_baseline(ratings, splits, users, ITEMS, cfg)
    c = sasrec_ce_baseline(ratings, splits, users, ITEMS, replace(cfg, seed=1))
    assert a.test_rankings == b.test_rankings and a.valid_rankings == b.valid_rankings
    assert a.chosen.curve == b.chosen.curve
    assert a.chosen.curve != c.chosen.curve


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(argv)


def test_cli_options_parse_and_zero_seeds_skips_the_baseline(monkeypatch, capsys):
    for var in ("SEEDS", "GRID", "MAX_EPOCHS"):
        monkeypatch.delenv(f"RECDB_EVAL_SASREC_CE_{var}", raising=False)
    args = parse([])
    cfg = cli.sasrec_ce_config(args)
    assert cfg is not None and cfg.seeds == 3 and cfg.grid == DEFAULT_GRID
    assert cfg.max_epochs == 200 and cfg.device == args.device
    args = parse(["--sasrec-ce-seeds", "5", "--sasrec-ce-grid", "20:0.1, 200:0.5",
                  "--sasrec-ce-max-epochs", "7"])  # fmt: skip
    cfg = cli.sasrec_ce_config(args)
    assert cfg is not None and (cfg.seeds, cfg.max_epochs) == (5, 7)
    assert cfg.grid == ((20, 0.1), (200, 0.5))
    assert cli.sasrec_ce_config(parse(["--sasrec-ce-seeds", "0"])) is None
    monkeypatch.setenv("RECDB_EVAL_SASREC_CE_SEEDS", "0")
    assert cli.sasrec_ce_config(parse([])) is None
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert "RECDB_EVAL_SASREC_CE_SEEDS" in parser.format_help()
    assert format_grid(parse_grid(format_grid(DEFAULT_GRID))) == format_grid(DEFAULT_GRID)
    with pytest.raises(ValueError, match="MAX_LEN:DROPOUT"):
        parse_grid("50-0.2")

    # main(): --sasrec-ce-seeds 0 hands run_evaluation no baseline, a bad grid stops early
    seen: dict[str, Any] = {}

    def fake_run(*a: Any, **kw: Any) -> dict[str, Any]:
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
    assert cli.main(parse(["--cold-items", "0"])) == 0
    assert seen["sasrec_ce_config"] is None
    monkeypatch.delenv("RECDB_EVAL_SASREC_CE_SEEDS")
    assert cli.main(parse(["--cold-items", "0", "--sasrec-ce-seeds", "2"])) == 0
    assert seen["sasrec_ce_config"].seeds == 2
    seen.clear()
    assert cli.main(parse(["--cold-items", "0", "--sasrec-ce-grid", "nope"])) == 2
    assert not seen and "--sasrec-ce-grid" in capsys.readouterr().err


def _seeds(ndcg: list[float], hr: list[float]) -> dict[str, Any]:
    return {
        "n": len(ndcg),
        "seeds": list(range(len(ndcg))),
        "ndcg@10_mean": sum(ndcg) / len(ndcg),
        "hr@10_mean": sum(hr) / len(hr),
        "ndcg@10_std": 0.0,
        "hr@10_std": 0.0,
    }


def test_the_baseline_target_compares_seed_means_not_the_rows():
    # the rows (one seed's ranking) would pass 1.1x; the seed means do not
    base = {"ndcg@10": 0.100, "seeds": _seeds([0.100, 0.110, 0.120], [0.20, 0.20, 0.20])}
    seq = {"ndcg@10": 0.111, "seeds": _seeds([0.111, 0.111, 0.111], [0.21, 0.21, 0.21])}
    found = report.targets({"sasrec-ce": base, "sequence": seq})
    ndcg, hr = found
    assert ndcg["measured"] == pytest.approx(0.111 / 0.110)
    assert ndcg["threshold"] == report.BASELINE_RATIO and not ndcg["met"]
    assert hr["measured"] == pytest.approx(1.05) and hr["met"]
    seq["seeds"] = _seeds([0.122, 0.122, 0.122], [0.20, 0.20, 0.20])
    ndcg, hr = report.targets({"sasrec-ce": base, "sequence": seq})
    assert ndcg["met"] and not hr["met"]  # HR must be above the baseline, not equal to it
    table = report.format_table(
        {"methods": {"sasrec-ce": {**base, **ROW}, "sequence": {**seq, **ROW}}, "protocol": {}}
    )
    assert "[met] sequence / sasrec-ce, ndcg@10" in table
    assert "[NOT met] sequence / sasrec-ce, hr@10" in table


def test_no_baseline_target_without_seed_means_of_both():
    seq = {"seeds": _seeds([0.2], [0.3])}
    assert report.targets({"sequence": seq}) == []
    assert report.targets({"sequence": seq, "sasrec-ce": {"ndcg@10": 0.1}}) == []


ROW = {"hr@10": 0.2, "mrr@10": 0.05, "coverage@10": 0.3, "seconds": 1.0}
