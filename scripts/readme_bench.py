"""Paste `recdb bench --markdown docs/bench.json` between the README's bench markers
(tests/tools/test_readme_figures.py checks they agree): `make bench` runs it."""

from __future__ import annotations

import sys
from pathlib import Path

from recdb.tools.bench.cli import markdown

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def main(result: str = str(ROOT / "docs" / "bench.json")) -> int:
    body = markdown(result).strip().split("\n", 2)[2].strip()  # drop "## recdb bench"
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    print(f"README.md: performance tables from {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
