"""The report of `recdb bench --scale`: its targets, the markdown table per step, and the
log-log plot of every cost against the step (also from a saved JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recdb.tools.bench.config import USER_CLASSES
from recdb.tools.bench.report import _fmt, _ratio, _table, memory_available

# (what, comparison, threshold): the smallest and the largest step of one run compared.
SCALE_TARGETS: tuple[tuple[str, str, float], ...] = (
    ("scale: served p99 heavy / light @largest step", "<=", 1.5),
    ("scale: served p99 @largest / @smallest step, worst class", "<=", 1.3),
    ("scale: maintenance s per 1k new events @largest / @smallest step", "<=", 2.0),
    ("scale: wall time of a run to 10^7 events, s", "<=", 3600.0),
    ("scale: model activation, minutes per 10^6 items @largest step", "<=", 30.0),
)
FULL_SCALE_EVENTS = 10_000_000  # the wall-time target applies to a run that reaches it


def _steps(result: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted(((int(n), s) for n, s in result.get("scale", {}).items()), key=lambda x: x[0])


def _p99(step: dict[str, Any], cls: str, prefix: str = "rerank") -> float | None:
    return (step.get("classes", {}).get(cls) or {}).get(f"{prefix}_p99_ms")


def _lookup(result: dict[str, Any], name: str, prefix: str = "rerank") -> float | None:
    """The measured value of target ``name``; with ``prefix`` "raw_hnsw", the same ratio of
    the bare pgvector query (latency targets only, None for the others)."""
    steps = _steps(result)
    if not steps:
        return None
    (n0, small), (n1, large) = steps[0], steps[-1]
    if name == SCALE_TARGETS[0][0]:
        return _ratio(_p99(large, "heavy", prefix), _p99(large, "light", prefix))
    if name == SCALE_TARGETS[1][0]:
        if n0 == n1:
            return None
        ratios = [_ratio(_p99(large, c, prefix), _p99(small, c, prefix)) for c in USER_CLASSES]
        got = [r for r in ratios if r is not None]
        return max(got) if got else None
    if prefix != "rerank":
        return None
    if name == SCALE_TARGETS[2][0]:
        if n0 == n1:
            return None
        return _ratio(
            (large.get("live") or {}).get("maintenance_s_per_1k_events"),
            (small.get("live") or {}).get("maintenance_s_per_1k_events"),
        )
    if name == SCALE_TARGETS[3][0]:
        return result.get("wall_s") if n1 >= FULL_SCALE_EVENTS else None
    if name == SCALE_TARGETS[4][0]:
        per = (large.get("activation") or {}).get("seconds_per_1e5_items")
        return None if per is None else round(per * 10 / 60, 2)
    return None


def scale_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with what was measured and whether it is met (None: not measured, e.g.
    one step only, or a run that stops short of 10^7 events for the wall time).

    ``floor``: for the latency targets, the same ratio of the raw HNSW query in the same
    run (no recdb in it: what the index and the machine do between the user classes and
    the steps on their own); None for the others."""
    out = []
    for name, op, limit in SCALE_TARGETS:
        got = _lookup(result, name)
        ok = None if got is None else {"<=": got <= limit, ">=": got >= limit}[op]
        out.append(
            {
                "name": name,
                "op": op,
                "limit": limit,
                "target": f"{name} {op} {limit:g}",
                "measured": got,
                "floor": _lookup(result, name, "raw_hnsw"),
                "met": ok,
            }
        )
    return out


def _mk(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return f"{n:,}"


def render_scale(result: dict[str, Any]) -> str:
    steps = _steps(result)
    head = ["events", *(_mk(n) for n, _ in steps)]

    def row(label: str, get: Any, digits: int = 2) -> list[str]:
        return [label, *(_fmt(get(s), digits) for _, s in steps)]

    def live(key: str) -> Any:
        return lambda s: (s.get("live") or {}).get(key)

    def size(key: str) -> Any:
        return lambda s: (s.get("sizes_mb") or {}).get(key)

    def activation(key: str) -> Any:
        return lambda s: (s.get("activation") or {}).get(key)

    rows = [
        row("items = users", lambda s: s.get("items")),
        row("`recdb import` events/s", lambda s: s.get("import_events_per_s"), 0),
        row("HNSW bulk build, s", lambda s: s.get("index_build_s"), 1),
        row("popularity, full, s", lambda s: job("maintenance_full", "refresh_popularity", s), 2),
        row("content prior refit, s", lambda s: job("maintenance_full", "content_prior", s), 2),
        row(
            "co-visitation, full rebuild, s",
            lambda s: job("maintenance_full", "refresh_neighbors", s),
            2,
        ),
        row("worker users/s (mean encoder)", lambda s: s.get("worker_users_per_s"), 0),
        row("live single-row INSERTs/s, worker running", live("insert_events_per_s"), 0),
        row("live: worker caught up after, s", live("catch_up_s"), 2),
        row("maintenance after the live events, s", lambda s: _live_m(s), 2),
        row("  per 1k new events, s", live("maintenance_s_per_1k_events"), 3),
        row("  of which popularity, s", lambda s: job("live", "refresh_popularity", s), 2),
        row("  of which content prior, s", lambda s: job("live", "content_prior", s), 2),
        row("  of which co-visitation, s", lambda s: job("live", "sync_covisitation", s), 2),
        row(
            "  co-visitation pair rows written per event", live("covisit_pair_writes_per_event"), 1
        ),
        row("  co-visitation time per pair row written, µs", live("covisit_us_per_pair_write"), 2),
    ]
    for cls in USER_CLASSES:
        rows.append(row(f"served p50 / p99 {cls}, ms", _pair(cls, "rerank")))
    for cls in USER_CLASSES:
        rows.append(row(f"filtered / candidates p99 {cls}, ms", _fc(cls)))
    for cls in USER_CLASSES:
        rows.append(row(f"raw HNSW p99 {cls}, ms", lambda s, c=cls: _p99(s, c, "raw_hnsw")))
    rows += [
        row("heavy users' events (min-max)", _events_range("heavy")),
        row("database, MB", size("database"), 0),
        row("  events (heap + indexes), MB", size("events"), 0),
        row("  co-visitation counts, MB", size("covisitation"), 0),
        row("rerank() working set, MB", size("served_working_set"), 0),
        row("disk per 10^6 events, MB", lambda s: s.get("disk_mb_per_million_events"), 0),
        row("model activation: stage, s", activation("stage_s"), 1),
        row("  index build, s", activation("build_s"), 1),
        row("  switch (one transaction), s", activation("switch_s"), 1),
        row("  total per 10^5 items, s", activation("seconds_per_1e5_items"), 0),
        row(
            "  before 0016: row by row per 10^5 items, s",
            activation("rowwise_seconds_per_1e5_items"),
            0,
        ),
    ]
    lines = ["## recdb bench --scale", "", *_table(head, [[str(x) for x in r] for r in rows])]
    lines += ["### Targets", ""]
    # Recomputed from the steps: a run saved before `floor` existed renders it too.
    targets = scale_targets(result) if result.get("targets") else []
    lines += _table(
        ["target", "measured", "raw HNSW query", "met"],
        [
            [t["target"], _fmt(t["measured"], 3), _fmt(t["floor"], 3), _fmt(t["met"])]
            for t in targets
        ],
    )
    m = result.get("machine", {})
    lines.append(
        f"Commit {m.get('commit', '?')}, {m.get('cpu_count', '?')} cores, load average at "
        f"start {m.get('load_avg_at_start', '?')}, end {m.get('load_avg_at_end', '?')}"
        f"{memory_available(m)}; wall {_fmt(result.get('wall_s'), 0)} s."
    )
    return "\n".join(lines) + "\n"


def _live_m(s: dict[str, Any]) -> float | None:
    return ((s.get("live") or {}).get("maintenance") or {}).get("seconds")


def _pair(cls: str, prefix: str) -> Any:
    def get(s: dict[str, Any]) -> str | None:
        c = s.get("classes", {}).get(cls) or {}
        p50, p99 = c.get(f"{prefix}_p50_ms"), c.get(f"{prefix}_p99_ms")
        return None if p99 is None else f"{_fmt(p50)} / {_fmt(p99)}"

    return get


def _fc(cls: str) -> Any:
    def get(s: dict[str, Any]) -> str | None:
        f, c = _p99(s, cls, "filtered"), _p99(s, cls, "candidates")
        return None if f is None and c is None else f"{_fmt(f)} / {_fmt(c)}"

    return get


def _events_range(cls: str) -> Any:
    def get(s: dict[str, Any]) -> str | None:
        c = s.get("classes", {}).get(cls) or {}
        if c.get("events_min") is None:
            return None
        return f"{c['events_min']:,}-{c['events_max']:,}"

    return get


def write_scale_plot(result: dict[str, Any], path: str | Path) -> None:
    """Log-log: every cost against the step's events (seconds, ms, MB in three panels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = _steps(result)
    if not steps:
        raise ValueError("nothing to plot: the result has no --scale steps")
    xs = [n for n, _ in steps]
    panels: list[tuple[str, dict[str, list[Any]]]] = [
        (
            "seconds",
            {
                "import": [s.get("import_s") for _, s in steps],
                "HNSW build": [s.get("index_build_s") for _, s in steps],
                "popularity (full)": [
                    job("maintenance_full", "refresh_popularity", s) for _, s in steps
                ],
                "popularity (step after live events)": [
                    job("live", "refresh_popularity", s) for _, s in steps
                ],
                "co-visitation (full)": [
                    job("maintenance_full", "refresh_neighbors", s) for _, s in steps
                ],
                "co-visitation (step after live events)": [
                    job("live", "sync_covisitation", s) for _, s in steps
                ],
                "maintenance / 1k live events": [
                    (s.get("live") or {}).get("maintenance_s_per_1k_events") for _, s in steps
                ],
                "catch-up after live events": [
                    (s.get("live") or {}).get("catch_up_s") for _, s in steps
                ],
            },
        ),
        (
            "rerank() p99, ms",
            {
                **{f"served {c}": [_p99(s, c) for _, s in steps] for c in USER_CLASSES},
                "filtered median": [_p99(s, "median", "filtered") for _, s in steps],
                "candidates median": [_p99(s, "median", "candidates") for _, s in steps],
                "raw HNSW median": [_p99(s, "median", "raw_hnsw") for _, s in steps],
            },
        ),
        (
            "MB",
            {
                "database": [(s.get("sizes_mb") or {}).get("database") for _, s in steps],
                "rerank() working set": [
                    (s.get("sizes_mb") or {}).get("served_working_set") for _, s in steps
                ],
            },
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 4.5), squeeze=False)
    for ax, (unit, series) in zip(axes[0], panels, strict=True):
        for name, ys in series.items():
            pts = [
                (x, y) for x, y in zip(xs, ys, strict=True) if isinstance(y, int | float) and y > 0
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events in the log")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("recdb bench --scale: cost against the size of the log (log-log)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def job(phase: str, name: str, s: dict[str, Any]) -> float | None:
    """Wall seconds of a maintenance job (run_jobs' names) in a phase ("maintenance_full",
    or "live": the incremental run after the live events)."""
    m = s.get(phase) or {}
    if phase == "live":
        m = m.get("maintenance") or {}
    return (m.get("jobs", {}).get(name) or {}).get("seconds")
