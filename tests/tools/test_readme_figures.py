"""The README's performance tables are `recdb bench --markdown` of the saved runs,
unchanged: a figure typed in by hand (or left from an older run) fails here."""

from __future__ import annotations

import pytest

from scripts.readme_bench import RUNS, body
from tests.support import REPO_ROOT


@pytest.mark.parametrize("name", sorted(RUNS))
def test_readme_performance_tables_are_the_saved_runs_markdown(name: str) -> None:
    begin, end = RUNS[name]
    readme = (REPO_ROOT / "README.md").read_text()
    assert begin in readme and end in readme
    pasted = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert pasted == body(REPO_ROOT / "docs" / name)
