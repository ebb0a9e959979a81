"""The report: the result's targets, and the markdown `recdb bench` prints (also from a
saved JSON with `recdb bench --markdown`, so README tables come from one run's file).

Every lookup tolerates missing keys: a run of some sizes only, or an older JSON, renders
with "-" where a figure was not measured.
"""

from __future__ import annotations

import math
from typing import Any

from recdb.tools.bench.config import ML100K, TARGETS, USER_CLASSES

HEADLINE_SIZE = "100000"
HEADLINE_CLIENTS = "4"


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:,.{digits}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _signed(x: Any) -> str:
    """A difference with its sign (+1.33, -0.42)."""
    return "-" if x is None else f"{x:+,.2f}"


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(float(a) / float(b), 3)


def _lookup(result: dict[str, Any], name: str) -> float | None:
    """The measured figure of a target; None when its size or phase was not run."""
    sizes = result.get("sizes", {})
    s = sizes.get(HEADLINE_SIZE) or {}
    classes = (sizes.get(ML100K) or {}).get("classes", {})
    by_rate = (result.get("freshness") or {}).get("by_rate", {})
    concurrent = (s.get("concurrent") or {}).get(HEADLINE_CLIENTS) or {}
    table: dict[str, Any] = {
        "served rerank p99 @100k / raw HNSW p99 @100k": _ratio(
            s.get("rerank_p99_ms"), s.get("raw_hnsw_p99_ms")
        ),
        "recall_at_20 @100k": s.get("recall_at_20"),
        "4 clients p99 / sequential p99 @100k": _ratio(
            concurrent.get("p99_ms"), s.get("rerank_p99_ms")
        ),
        "trigger_overhead": (result.get("ingest") or {}).get("trigger_overhead"),
        "worker users_per_s (mean encoder)": (result.get("worker") or {}).get("users_per_s"),
        "zero_lag_fraction": (result.get("freshness") or {}).get("zero_lag_fraction"),
    }
    fold = (sizes.get(ML100K) or {}).get("fresh_fold") or {}
    table["rerank p99 with 3 fresh events (model fold) - with none @ml100k, ms"] = fold.get(
        "model_fold_p99_over_none_ms"
    )
    for cls in USER_CLASSES:
        table[f"served rerank p99 @ml100k {cls}"] = (classes.get(cls) or {}).get("rerank_p99_ms")
    for rate in ("1000", "3000"):
        busy = (by_rate.get(rate) or {}).get("during_refresh") or {}
        table[f"worker_p99_ms @{rate} ev/s (refreshes running)"] = busy.get("worker_p99_ms")
    return table.get(name)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with what was measured and whether it is met (None: not measured)."""
    out = []
    for name, op, limit in TARGETS:
        got = _lookup(result, name)
        ok = None
        if got is not None:
            ok = {"<=": got <= limit, ">=": got >= limit, "<": got < limit}[op]
        out.append(
            {
                "name": name,
                "op": op,
                "limit": limit,
                "target": f"{name} {op} {limit:g}",
                "measured": got,
                "met": ok,
            }
        )
    return out


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def _numeric_sizes(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sizes = result.get("sizes", {})
    return sorted(((n, s) for n, s in sizes.items() if n.isdigit()), key=lambda kv: int(kv[0]))


def _p(s: dict[str, Any], prefix: str) -> list[str]:
    return [_fmt(s.get(f"{prefix}_p{p}_ms")) for p in (50, 95, 99)]


def _latency_tables(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for n, s in _numeric_sizes(result):
        reps = s.get("repeats")
        lines.append(
            f"### {int(n):,} items (sequential, k = {(s.get('settings') or {}).get('k', 20)},"
            f" ef_search {_fmt(s.get('ef_search'))}, median of {_fmt(reps)} repetitions)"
        )
        lines.append("")
        select1 = [_fmt(s.get("select1_ms"), 3)]
        select1 += [_fmt(s.get(f"select1_p{p}_ms"), 3) for p in (95, 99)]
        rows = [
            ["served `rerank()` (as shipped)", *_p(s, "rerank"), _fmt(s.get("rerank_queries"))],
            ["vector path (covisit_weight 0)", *_p(s, "vector"), _fmt(s.get("vector_queries"))],
            ["raw HNSW query", *_p(s, "raw_hnsw"), _fmt(s.get("raw_hnsw_queries"))],
            ["SELECT 1", *select1, "-"],
        ]
        lines += _table(["path", "p50 ms", "p95 ms", "p99 ms", "calls"], rows)
    if _numeric_sizes(result):
        lines.append(
            "Client-side wall time per call, one round trip each. served = `rerank()` with the"
            " shipped settings (co-visitation on); vector = the same with covisit_weight = 0;"
            " raw HNSW = `ORDER BY embedding <=> user vector LIMIT k` with rerank()'s"
            " ef_search and relaxed iterative scan (sequential scans off, so it is the HNSW"
            " search on small catalogs too). Paths interleaved over the same users."
        )
        lines.append("")
    return lines


def _quality_table(result: dict[str, Any]) -> list[str]:
    sizes = _numeric_sizes(result)
    if not sizes:
        return []
    head = [
        "items",
        "recall@20",
        "exact scan p50",
        "app-side p50",
        "app-side / vector p50",
        "filter (own cat.) p50/p99, recall",
        "filter (other cat.) p50/p99, recall",
    ]
    rows = []
    for n, s in sizes:
        f, fo = s.get("filtered") or {}, s.get("filtered_other") or {}
        rows.append(
            [
                f"{int(n):,}",
                _fmt(s.get("recall_at_20"), 3),
                _fmt(s.get("exact_scan_ms")),
                _fmt(s.get("app_side_p50_ms")),
                f"{_fmt(s.get('app_side_ratio'))}x",
                f"{_fmt(f.get('p50_ms'))}/{_fmt(f.get('p99_ms'))},"
                f" {_fmt(f.get('recall_at_20'), 3)}",
                f"{_fmt(fo.get('p50_ms'))}/{_fmt(fo.get('p99_ms'))},"
                f" {_fmt(fo.get('recall_at_20'), 3)}",
            ]
        )
    lines = ["### Recall and app-side (vector path)", ""]
    lines += _table(head, rows)
    lines.append(
        "recall@20 of rerank() on the vector path (co-visitation, popularity, diversity and"
        " freshness weights 0) vs exact numpy search with the same exclusions and filter;"
        " exact scan = numpy brute force over the same catalog; app-side = the same ranking"
        " in Python over 5 round trips, compared with the vector path."
    )
    for n, s in sizes:
        mod = s.get("app_side_ratio_modelled") or {}
        if mod:
            shown = ", ".join(f"{k.removeprefix('rtt_')} RTT {v}x" for k, v in mod.items())
            lines.append(
                f"App-side ratio if the app were a network hop away ({n} items,"
                f" modelled from the measured times): {shown}."
            )
    lines.append("")
    return lines


def _ml100k_table(result: dict[str, Any]) -> list[str]:
    ml = result.get("sizes", {}).get(ML100K)
    if not ml:
        return []
    lines = [
        f"### MovieLens-100K by user class ({_fmt(ml.get('items'))} items,"
        f" {_fmt(ml.get('events'))} ratings; ef_search {_fmt(ml.get('ef_search'))})",
        "",
    ]
    head = ["class", "users (events)", "calls"]
    head += [f"{path} p50/p95/p99" for path in ("served", "vector", "raw HNSW")]
    head += ["exact p50/p99"]
    rows = []
    for cls in USER_CLASSES:
        c = (ml.get("classes") or {}).get(cls) or {}
        rows.append(
            [
                cls,
                f"{_fmt(c.get('users'))} ({_fmt(c.get('events_min'))}-{_fmt(c.get('events_max'))})",
                _fmt(c.get("rerank_queries")),
                *("/".join(_p(c, prefix)) for prefix in ("rerank", "vector", "raw_hnsw")),
                f"{_fmt(c.get('exact_p50_ms'))}/{_fmt(c.get('exact_p99_ms'))}",
            ]
        )
    lines += _table(head, rows)
    lines.append(
        f"ms, median of repetitions; {ml.get('class_definition', '')}; exact = the raw query"
        f" with index scans off. Raw query on the HNSW index:"
        f" {_fmt(ml.get('raw_hnsw_index_scan'))}."
    )
    lines.append("")
    fold = ml.get("fresh_fold")
    if fold:

        def trio(name: str) -> str:
            return "/".join(_fmt((fold.get(name) or {}).get(f"p{p}")) for p in (50, 95, 99))

        lines.append(
            f"Zero-lag fold cost ({_fmt(fold.get('users'))} users with"
            f" {fold.get('fresh_events')} new events each, served `rerank()`, p50/p95/p99 ms;"
            f" the three states interleaved over the same users and events): already covered"
            f" by the stored vector {trio('none')}; unseen, folded with the mean algebra"
            f" {trio('mean_fold')}, with a model's fold operator {trio('model_fold')}"
            f" (p99 {_signed(fold.get('model_fold_p99_over_none_ms'))} ms)."
        )
        lines.append("")
    return lines


def _clients_cell(run: dict[str, Any] | None) -> str:
    """One concurrent-clients run as "p50/p99 (qps)"."""
    if not run:
        return "-"
    return f"{_fmt(run.get('p50_ms'))}/{_fmt(run.get('p99_ms'))} ({_fmt(run.get('qps'), 0)})"


def _concurrency_table(result: dict[str, Any]) -> list[str]:
    sized = [
        (n, s)
        for n, s in sorted(
            result.get("sizes", {}).items(), key=lambda kv: (kv[0].isdigit(), len(kv[0]), kv[0])
        )
        if s.get("concurrent")
    ]
    if not sized:
        return []
    clients = sorted({c for _, s in sized for c in s["concurrent"]}, key=int)
    head = ["size", "sequential p99"]
    head += [f"{c} client{'' if c == '1' else 's'} p50/p99 (qps)" for c in clients]
    rows = []
    for n, s in sized:
        row = [f"{int(n):,}" if n.isdigit() else n, _fmt(s.get("rerank_p99_ms"))]
        for c in clients:
            row.append(_clients_cell(s["concurrent"].get(c)))
        rows.append(row)
        floor = s.get("concurrent_floor")
        if floor:
            row = [f"{row[0]}, CPU floor", "-"]
            for c in clients:
                row.append(_clients_cell(floor.get(c)))
            rows.append(row)
    lines = ["### Concurrent clients (served `rerank()`, one connection each)", ""]
    lines += _table(head, rows)
    if any(s.get("concurrent_floor") for _, s in sized):
        lines.append(
            "CPU floor = the same clients running a query that is nothing but CPU in its"
            " backend (counting a generate_series), sized to the served p50 alone: what"
            " concurrency costs on this machine's cores whatever the query does."
        )
        lines.append("")
    return lines


def _freshness_table(result: dict[str, Any]) -> list[str]:
    fr = result.get("freshness") or {}
    by_rate = fr.get("by_rate") or {}
    if not by_rate:
        return []
    head = [
        "events/s (target)",
        "achieved",
        "worker p50",
        "p99",
        "max",
        "not reflected",
        "zero-lag",
        "INSERT p50/p99",
    ]
    rows = []
    runs = []
    for rate, r in sorted(by_rate.items(), key=lambda kv: float(kv[0])):
        runs.append((rate, r))
        if r.get("during_refresh"):
            busy = r["during_refresh"]
            runs.append((f"{rate}, refreshes running ({_fmt(busy.get('refresh_s'))} s)", busy))
    for label, r in runs:
        lower = ">= " if r.get("worker_percentiles_are_lower_bounds") else ""
        rows.append(
            [
                label,
                _fmt(r.get("event_rate_achieved"), 0),
                f"{lower}{_fmt(r.get('worker_p50_ms'))}",
                f"{lower}{_fmt(r.get('worker_p99_ms'))}",
                f"{lower}{_fmt(r.get('worker_max_ms'))}",
                f"{_fmt(r.get('events_not_reflected'))} of {_fmt(r.get('events_sent'))}",
                f"{_fmt(r.get('zero_lag_reflected'))}/{_fmt(r.get('zero_lag_trials'))}",
                f"{_fmt(r.get('insert_p50_ms'))}/{_fmt(r.get('insert_p99_ms'))}",
            ]
        )
    lines = [
        f"### Freshness ({_fmt(fr.get('duration_s'), 0)} s per rate, worker as"
        f" {fr.get('worker_mode')})",
        "",
    ]
    lines += _table(head, rows)
    lines.append(
        "worker = commit of an event -> the worker's user vector covers it (ms; >= : lower"
        " bounds, some events were never reflected); zero-lag = rerank() right after a"
        f" commit reflects it (all rates: {_fmt(fr.get('zero_lag_fraction'), 3)} of"
        f" {_fmt(fr.get('zero_lag_trials'))} trials)."
    )
    lines.append("")
    return lines


def _ingest_worker_lines(result: dict[str, Any]) -> list[str]:
    ing, wk = result.get("ingest") or {}, result.get("worker") or {}
    lines: list[str] = []
    if ing:
        head = ["insert pattern", "events/s with triggers", "plain", "trigger overhead"]
        rows = []
        for key in ("single_row", "single_row_durable", "batched_100"):
            m = ing.get(key)
            if not m:
                continue
            overhead = m.get("trigger_overhead")
            rows.append(
                [
                    m.get("mode", key),
                    _fmt(m.get("events_per_s_with_triggers"), 0),
                    _fmt(m.get("events_per_s_plain"), 0),
                    f"{_fmt(100 * overhead, 1)}%" if overhead is not None else "-",
                ]
            )
        lines += ["### Ingest", ""]
        lines += _table(head, rows)
        if ing.get("trigger_overhead_definition"):
            lines += [f"trigger overhead = {ing['trigger_overhead_definition']}.", ""]
    if wk:
        lines += ["### Worker throughput", ""]
        rows = [
            ["users/s, mean encoder", _fmt(wk.get("users_per_s"), 0)],
            ["users/s, sequence encoder", _fmt(wk.get("sequence_users_per_s"), 0)],
            [f"items/s ({wk.get('items_device')})", _fmt(wk.get("items_per_s"), 1)],
        ]
        lines += _table(["what", "rate"], rows)
    return lines


def memory_available(m: dict[str, Any]) -> str:
    """ "; memory available at start A GiB, at end B GiB" when the run recorded it (runs
    before it did print as they did)."""
    start, end = m.get("mem_available_gib_at_start"), m.get("mem_available_gib_at_end")
    if start is None and end is None:
        return ""
    return f"; memory available at start {start} GiB, at end {end} GiB"


def _machine_lines(result: dict[str, Any]) -> list[str]:
    m = result.get("machine") or {}
    return [
        f"Commit {m.get('commit') or '?'}; {m.get('cpu', '?')}, {m.get('cpu_count')} cores,"
        f" {m.get('mem_total_gib')} GiB; load average at start {m.get('load_avg_at_start')},"
        f" at end {m.get('load_avg_at_end')}{memory_available(m)}; PostgreSQL"
        f" {m.get('postgres')}, pgvector"
        f" {m.get('pgvector')}, shared_buffers {m.get('shared_buffers')}, jit {m.get('jit')};"
        f" wall time {_fmt(result.get('wall_s'), 0)} s.",
        f"Vectors: {result.get('vectors') or '-'}.",
        "",
    ]


def render(result: dict[str, Any]) -> str:
    """The whole report in markdown, from a fresh run or a saved JSON."""
    lines = ["## recdb bench", ""]
    lines += _machine_lines(result)
    lines += _latency_tables(result)
    lines += _ml100k_table(result)
    lines += _concurrency_table(result)
    lines += _quality_table(result)
    lines += _freshness_table(result)
    lines += _ingest_worker_lines(result)
    lines += ["### Targets", ""]
    rows = []
    for t in result.get("targets", []):
        met = {True: "yes", False: "NO", None: "-"}[t.get("met")]
        rows.append([t.get("target", "?"), _fmt(t.get("measured"), 3), met])
    lines += _table(["target", "measured", "met"], rows)
    return "\n".join(lines).rstrip() + "\n"
