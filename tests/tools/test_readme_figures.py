"""The README's performance and quality tables are the reports of the saved runs
(`recdb bench --markdown`, `recdb eval --markdown`), unchanged: a figure typed in by hand
(or left from an older run) fails here."""

from __future__ import annotations

import json

import pytest

from scripts.readme_figures import RUNS
from tests.support import REPO_ROOT

PASTES = [
    (name, begin, end, render)
    for name, pastes in sorted(RUNS.items())
    for (begin, end), render in pastes.items()
]


@pytest.mark.parametrize(
    ("name", "begin", "end", "render"), PASTES, ids=[p[1].strip("<!- ") for p in PASTES]
)
def test_readme_tables_are_the_saved_runs_reports(name, begin, end, render) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert begin in readme and end in readme
    pasted = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert pasted == render(REPO_ROOT / "docs" / name)


def test_eval_markdown_prints_a_saved_run_and_names_a_bad_file(tmp_path, capsys) -> None:
    import argparse

    from recdb.tools.eval import cli
    from recdb.tools.eval.markdown import SECTIONS, render

    def main(path) -> int:
        parser = argparse.ArgumentParser()
        cli.configure(parser)
        assert "RECDB_EVAL_MARKDOWN" in parser.format_help()
        return cli.main(parser.parse_args(["--markdown", str(path)]))

    saved = REPO_ROOT / "docs" / "eval.json"
    assert main(saved) == 0
    out = capsys.readouterr().out
    result = json.loads(saved.read_text())
    for section in SECTIONS:
        assert render(result, section).strip() in out
    assert "[NOT met] sequence / sasrec-ce" in out or "[met] sequence / sasrec-ce" in out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for bad in (tmp_path / "missing.json", broken):
        assert main(bad) == 2
        assert f"--markdown {bad}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown section 'nope'"):
        render(result, "nope")
