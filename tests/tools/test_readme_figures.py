"""The README's performance tables are `recdb bench --markdown docs/bench.json`, unchanged:
a figure typed in by hand (or left from an older run) fails here."""

from __future__ import annotations

from recdb.tools.bench.cli import markdown
from tests.support import REPO_ROOT


def test_readme_performance_tables_are_the_saved_runs_markdown():
    rendered = markdown(str(REPO_ROOT / "docs" / "bench.json")).strip()
    body = rendered.split("\n", 2)[2].strip()  # without the "## recdb bench" heading
    readme = (REPO_ROOT / "README.md").read_text()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    assert begin in readme and end in readme
    pasted = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert pasted == body
