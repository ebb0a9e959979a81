"""The results page's files: what `recdb eval --json/--plot` and `recdb bench --json` wrote.

Read as plain JSON (the dashboard never imports the tools that wrote them), on every
request, so a new run shows without a restart. Missing keys are shown as missing: a file
from an older recdb still renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_BYTES = 20_000_000  # a results file larger than this is not a results file


@dataclass(frozen=True)
class ResultFiles:
    """Where the results are (None: not configured)."""

    eval_json: Path | None = None
    eval_plot: Path | None = None
    bench_json: Path | None = None


@dataclass(frozen=True)
class Loaded:
    """A results file's content, or why there is none (shown instead of the table)."""

    path: Path | None
    data: dict[str, Any] | None = None
    written_at: str | None = None
    problem: str | None = None


def load(path: Path | None, option: str, writer: str) -> Loaded:
    """Read one results file; a missing or broken one says what to run or what is wrong."""
    if path is None:
        return Loaded(None, problem=f"not configured: start recdb serve with {option} PATH")
    try:
        stat = path.stat()
        if stat.st_size > MAX_BYTES:
            return Loaded(path, problem=f"{path} is larger than {MAX_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Loaded(path, problem=f"{path} does not exist yet: run `{writer} {path}`")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Loaded(path, problem=f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        return Loaded(path, problem=f"{path} is not a JSON object")
    when = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Loaded(path, data, when)


def eval_rows(data: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The metric columns at the protocol's k and one row per method."""
    k = (data.get("protocol") or {}).get("k", 10)
    cols = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}", f"coverage@{k}"]
    methods = data.get("methods") or {}
    rows = [
        {"name": name, "values": [m.get(c) for c in cols], "valid": (m.get("valid") or {})}
        for name, m in methods.items()
        if isinstance(m, dict)
    ]
    return cols, rows


BENCH_COLUMNS = ("rerank_p50_ms", "rerank_p99_ms", "recall_at_20", "app_side_ratio")


def bench_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per catalogue size with the headline figures (absent ones stay None); the
    MovieLens size is timed per user class, so its median users stand for it."""
    rows = []
    for size, s in (data.get("sizes") or {}).items():
        if not isinstance(s, dict):
            continue
        median = (s.get("classes") or {}).get("median")
        if not any(s.get(c) is not None for c in BENCH_COLUMNS) and isinstance(median, dict):
            s, size = median, f"{size} (median users)"
        rows.append({"size": size, "values": [s.get(c) for c in BENCH_COLUMNS]})
    return rows
