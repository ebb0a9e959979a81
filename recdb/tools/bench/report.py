"""The report: the result's targets, and the markdown `recdb bench` prints."""

from __future__ import annotations

import math
from typing import Any

from recdb.tools.bench.config import TARGETS


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.{digits}f}"
    return str(x)


def _lookup(result: dict[str, Any], name: str) -> float | None:
    sizes = result.get("sizes", {})
    size = "100000" if "100000" in sizes else (max(sizes, key=int) if sizes else None)
    s = sizes.get(size, {}) if size else {}
    table = {
        "rerank_p99_ms @100k (sequential)": s.get("rerank_p99_ms"),
        "recall_at_20 @100k": s.get("recall_at_20"),
        "app_side_ratio @100k (app-side / rerank p50)": s.get("app_side_ratio"),
        "trigger_overhead": result.get("ingest", {}).get("trigger_overhead"),
        "worker users_per_s (mean encoder)": result.get("worker", {}).get("users_per_s"),
        "zero_lag_fraction": result.get("freshness", {}).get("zero_lag_fraction"),
        "worker_p99_ms (freshness)": result.get("freshness", {}).get("worker_p99_ms"),
    }
    return table.get(name)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, op, limit in TARGETS:
        got = _lookup(result, name)
        ok = None
        if got is not None:
            ok = {"<=": got <= limit, ">=": got >= limit, "<": got < limit}[op]
        out.append({"target": f"{name} {op} {limit:g}", "measured": got, "met": ok})
    return out


def render(result: dict[str, Any]) -> str:
    lines = ["## recdb bench", ""]
    clients = sorted(
        {c for s in result["sizes"].values() for c in s.get("concurrent", {})}, key=int
    )
    head = [
        "items",
        "rerank p50",
        "p95",
        "p99",
        "recall@20",
        "ef",
        "app-side p50",
        "ratio",
        "SELECT 1",
        "exact scan",
        "filter (own cat.) p50/p99, recall",
        "filter (other cat.) p50/p99, recall",
    ]
    head += [f"{c} clients p50/p99 (qps)" for c in clients]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for n, s in sorted(result["sizes"].items(), key=lambda kv: int(kv[0])):
        f, fo = s.get("filtered", {}), s.get("filtered_other", {})
        row = [
            f"{int(n):,}",
            _fmt(s["rerank_p50_ms"]),
            _fmt(s["rerank_p95_ms"]),
            _fmt(s["rerank_p99_ms"]),
            _fmt(s["recall_at_20"], 3),
            _fmt(s["ef_search"]),
            _fmt(s["app_side_p50_ms"]),
            f"{_fmt(s['app_side_ratio'])}x",
            _fmt(s["select1_ms"], 3),
            _fmt(s["exact_scan_ms"]),
            f"{_fmt(f.get('p50_ms'))}/{_fmt(f.get('p99_ms'))}, {_fmt(f.get('recall_at_20'), 3)}",
            f"{_fmt(fo.get('p50_ms'))}/{_fmt(fo.get('p99_ms'))}, {_fmt(fo.get('recall_at_20'), 3)}",
        ]
        for c in clients:
            cc = s.get("concurrent", {}).get(c)
            row.append(
                f"{_fmt(cc['p50_ms'])}/{_fmt(cc['p99_ms'])} ({_fmt(cc['qps'], 0)})" if cc else "-"
            )
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Latencies in ms, client-side wall time per query (one round trip), k = 20; recall@20"
        " of rerank() (popularity/diversity/freshness weights 0) vs exact numpy search with the"
        " same exclusions and filter; ef = hnsw.ef_search rerank() uses; exact scan = numpy"
        " brute force over the same catalog."
    )
    lines.append(f"Vectors: {result.get('vectors')}.")
    for n, sz in sorted(result["sizes"].items(), key=lambda kv: int(kv[0])):
        mod = sz.get("app_side_ratio_modelled") or {}
        if mod:
            shown = ", ".join(f"{k.removeprefix('rtt_')} RTT {v}x" for k, v in mod.items())
            lines.append(
                f"App-side ratio if the app were a network hop away ({n} items,"
                f" modelled from the measured times): {shown}."
            )
    fr, ing, wk = result.get("freshness", {}), result.get("ingest", {}), result.get("worker", {})
    if fr:
        lines.append(
            f"Freshness ({_fmt(fr.get('event_rate_achieved'), 0)} events/s for "
            f"{_fmt(fr.get('duration_s'), 0)} s, worker as {fr.get('worker_mode')}): zero-lag "
            f"{_fmt(fr.get('zero_lag_fraction'), 3)} of {fr.get('zero_lag_trials')} trials "
            f"(commit -> reflecting rerank() p50 {_fmt(fr.get('zero_lag_p50_ms'))} ms); "
            f"commit -> worker-updated user vector p50 {_fmt(fr.get('worker_p50_ms'))} ms, "
            f"p99 {_fmt(fr.get('worker_p99_ms'))} ms, {fr.get('events_not_reflected')} of "
            f"{fr.get('events_sent')} not reflected in time; event INSERT p50"
            f" {_fmt(fr.get('insert_p50_ms'))} ms, p99 {_fmt(fr.get('insert_p99_ms'))} ms"
            " while the worker ran."
            + (
                " (>= : lower bounds, some events were never reflected)"
                if fr.get("worker_percentiles_are_lower_bounds")
                else ""
            )
        )
        low = fr.get("low_rate")
        if low:
            lines.append(
                f"Freshness at {_fmt(low.get('event_rate_achieved'), 0)} events/s: worker p50"
                f" {_fmt(low.get('worker_p50_ms'))} ms, p99 {_fmt(low.get('worker_p99_ms'))} ms,"
                f" {low.get('events_not_reflected')} of {low.get('events_sent')} not reflected."
            )
    if ing:
        b = ing.get("batched_100", {})
        with_t, plain = ing.get("events_per_s_with_triggers"), ing.get("events_per_s_plain")
        b_with, b_plain = b.get("events_per_s_with_triggers"), b.get("events_per_s_plain")
        lines.append(
            "Ingest (single-row INSERTs, synchronous_commit=off):"
            f" {_fmt(with_t, 0)} events/s with triggers"
            f" vs {_fmt(plain, 0)} plain, overhead {_fmt(100 * ing['trigger_overhead'], 1)}%;"
            f" 100-row batches: {_fmt(b_with, 0)} vs {_fmt(b_plain, 0)} events/s, overhead"
            f" {_fmt(100 * b.get('trigger_overhead', float('nan')), 1)}%."
        )
    if wk:
        lines.append(
            f"Worker: {_fmt(wk.get('users_per_s'), 0)} users/s (mean encoder), "
            f"{_fmt(wk.get('sequence_users_per_s'), 0)} users/s (sequence encoder), "
            f"{_fmt(wk.get('items_per_s'), 1)} items/s ({wk.get('items_device')})."
        )
    m = result.get("machine", {})
    lines.append(
        f"Machine: {m.get('cpu', '?')}, {m.get('cpu_count')} cores, "
        f"{m.get('mem_total_gib')} GiB, load avg at start {m.get('load_avg_at_start')}; "
        f"PostgreSQL {m.get('postgres')}, pgvector {m.get('pgvector')}, "
        f"shared_buffers {m.get('shared_buffers')}, jit {m.get('jit')}."
    )
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("|---|---|---|")
    for t in result.get("targets", []):
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {_fmt(t['measured'], 3)} | {met} |")
    return "\n".join(lines)
