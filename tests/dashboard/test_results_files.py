"""The results page's files: a missing, broken or unconfigured one says what to do."""

from __future__ import annotations

import json

from recdb.dashboard.results import bench_rows, eval_rows, load
from tests.dashboard.conftest import BENCH_JSON


def test_a_missing_broken_or_unconfigured_file_says_what_to_do(tmp_path):
    assert load(None, "--eval-json", "recdb eval --json").problem == (
        "not configured: start recdb serve with --eval-json PATH"
    )
    missing = load(tmp_path / "eval.json", "--eval-json", "recdb eval --json")
    assert missing.problem == f"{tmp_path / 'eval.json'} does not exist yet: run " + (
        f"`recdb eval --json {tmp_path / 'eval.json'}`"
    )
    (tmp_path / "broken.json").write_text("{not json")
    assert "cannot read" in load(tmp_path / "broken.json", "--x", "y").problem
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "is not a JSON object" in load(tmp_path / "list.json", "--x", "y").problem


def test_an_older_or_partial_file_still_renders_what_it_has(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"methods": {"popularity": {"hr@10": 0.1}}}))
    cols, rows = eval_rows(load(tmp_path / "eval.json", "--x", "y").data)
    assert cols[0] == "hr@10" and rows[0]["values"] == [0.1, None, None, None]
    rows = bench_rows(json.loads(BENCH_JSON.read_text()))
    assert [r["size"] for r in rows] == ["ml100k (median users)", "10000", "100000"]
    assert all(v is not None for r in rows for v in r["values"][:2])  # p50, p99
