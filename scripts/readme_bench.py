"""Paste `recdb bench --markdown` of the saved runs between the README's markers
(tests/tools/test_readme_figures.py checks they agree): docs/bench.json (the figures,
`make bench`) and docs/bench_scale.json (`recdb bench --scale`, `make bench-scale`)."""

from __future__ import annotations

import sys
from pathlib import Path

from recdb.tools.bench.cli import markdown

ROOT = Path(__file__).resolve().parents[1]
# saved run -> the README markers its tables go between
RUNS = {
    "bench.json": ("<!-- bench:begin -->", "<!-- bench:end -->"),
    "bench_scale.json": ("<!-- scale:begin -->", "<!-- scale:end -->"),
}


def body(result: Path) -> str:
    """The markdown of a saved run without its "## recdb bench..." heading."""
    return markdown(str(result)).strip().split("\n", 2)[2].strip()


def paste(text: str, result: Path, begin: str, end: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body(result)}\n{end}{tail}"


def main(*names: str) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name in names or tuple(RUNS):
        result = ROOT / "docs" / name
        if result.exists():
            text = paste(text, result, *RUNS[name])
            print(f"README.md: tables from {result}")
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
