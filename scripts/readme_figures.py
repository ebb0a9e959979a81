"""Paste the reports of the saved runs between the README's markers
(tests/tools/test_readme_figures.py checks they agree): docs/bench.json (`recdb bench
--markdown`, `make bench`), docs/bench_scale.json (`recdb bench --scale`, `make
bench-scale`) and docs/eval.json (`recdb eval --markdown`, `make eval`: the Quality
section's main, fresh and cold-item tables)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from recdb.tools.bench.cli import markdown as bench_markdown
from recdb.tools.eval.markdown import SECTIONS as EVAL_SECTIONS
from recdb.tools.eval.markdown import render as eval_render

ROOT = Path(__file__).resolve().parents[1]


def _bench(result: Path) -> str:
    """The markdown of a saved bench run without its "## recdb bench..." heading."""
    return bench_markdown(str(result)).strip().split("\n", 2)[2].strip()


def _eval(section: str) -> Callable[[Path], str]:
    return lambda result: eval_render(json.loads(result.read_text()), section).strip()


# saved run in docs/ -> {the README markers a report goes between: its renderer}
RUNS: dict[str, dict[tuple[str, str], Callable[[Path], str]]] = {
    "bench.json": {("<!-- bench:begin -->", "<!-- bench:end -->"): _bench},
    "bench_scale.json": {("<!-- scale:begin -->", "<!-- scale:end -->"): _bench},
    "eval.json": {
        (f"<!-- eval-{s}:begin -->", f"<!-- eval-{s}:end -->"): _eval(s) for s in EVAL_SECTIONS
    },
}


def paste(text: str, body: str, begin: str, end: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main(*names: str) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name in names or tuple(RUNS):
        result = ROOT / "docs" / name
        if result.exists():
            for (begin, end), render in RUNS[name].items():
                text = paste(text, render(result), begin, end)
            print(f"README.md: tables from {result}")
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
