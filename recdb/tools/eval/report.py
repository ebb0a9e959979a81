"""What `recdb eval` hands back: the per-method results, the table it prints, the plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recdb.tools.eval.protocol import K
from recdb.tools.eval.sasrec_ce import NAME as BASELINE  # the strongest public baseline

# Per-phase fields that describe the run rather than the ranking: not repeated under "valid".
_RUN_FIELDS = frozenset(
    {"seconds", "encode_seconds", "rerank_ms_per_user", "train_seconds", "knobs"}
)
BASELINE_RATIO = 1.1  # its seed-mean NDCG@k at least this many times the baseline's (issue #18)


def methods(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """{method: test metrics, with the validation metrics under "valid" when there are any}
    from {phase: {method: metrics}}."""
    out: dict[str, dict[str, Any]] = {}
    for name, m in results["test"].items():
        out[name] = dict(m)
        if "valid" in results:
            out[name]["valid"] = {
                key: v for key, v in results["valid"][name].items() if key not in _RUN_FIELDS
            }
    return out


def targets(methods: Mapping[str, Mapping[str, Any]], k: int = K) -> list[dict[str, Any]]:
    """The trained encoder against BASELINE, seed means of both (one seed's ranking is
    not a claim): NDCG@k >= BASELINE_RATIO x and HR@k above it. Empty without both."""
    base, seq = methods.get(BASELINE, {}).get("seeds"), methods.get("sequence", {}).get("seeds")
    if not base or not seq:
        return []
    out = []
    for metric, threshold, strict in ((f"ndcg@{k}", BASELINE_RATIO, False), (f"hr@{k}", 1.0, True)):
        mean, floor = seq[f"{metric}_mean"], base[f"{metric}_mean"]
        ratio = mean / floor if floor else 0.0
        out.append(
            {
                "name": f"sequence / {BASELINE}, {metric} ({seq['n']} / {base['n']} seed means "
                f"{mean:.4f} / {floor:.4f})",
                "measured": ratio,
                "threshold": threshold,
                "met": ratio > threshold if strict else ratio >= threshold,
                "strict": strict,
            }
        )
    return out


def format_targets(found: list[Mapping[str, Any]]) -> list[str]:
    """One "[met] name: measured (target >= threshold)" line per target (">" if strict)."""
    return [
        f"  [{'met' if t['met'] else 'NOT met'}] {t['name']}: "
        f"{t['measured']:.4f} (target {'>' if t.get('strict') else '>='} "
        f"{t['threshold']:.4f})"
        for t in found
    ]


def format_table(result: Mapping[str, Any], k: int = K) -> str:
    cols = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}", f"coverage@{k}"]
    head = f"{'method':<18}" + "".join(f"{c:>12}" for c in cols) + f"{'val ndcg':>10}{'secs':>8}"
    lines = [head, "-" * len(head)]
    methods = result["methods"]
    pop = methods.get("popularity", {}).get(f"ndcg@{k}") or 0.0
    for name, m in methods.items():
        val = m.get("valid", {}).get(f"ndcg@{k}")
        row = f"{name:<18}" + "".join(f"{m[c]:>12.4f}" for c in cols)
        row += f"{'-' if val is None else f'{val:.4f}':>10}{m['seconds']:>8.1f}"
        if pop and name not in {"popularity"}:
            row += f"   {m[f'ndcg@{k}'] / pop:.2f}x pop"
        lines.append(row)
    lines += format_seeds(result, k)
    lines += format_targets(targets(methods, k))
    return "\n".join(lines)


def format_seeds(result: Mapping[str, Any], k: int = K) -> list[str]:
    """One line per method trained with several seeds (``sasrec-ce``): its test figure is
    the mean ± std over seeds, while its table row is one seed's ranking."""
    lines = []
    for name, m in result["methods"].items():
        seeds = m.get("seeds")
        if not seeds:
            continue
        line = (
            f"{name}: ndcg@{k} {seeds[f'ndcg@{k}_mean']:.4f} ± {seeds[f'ndcg@{k}_std']:.4f}, "
            f"hr@{k} {seeds[f'hr@{k}_mean']:.4f} ± {seeds[f'hr@{k}_std']:.4f} "
            f"({seeds['n']} seed{'s' if seeds['n'] != 1 else ''}; the row is seed "
            f"{seeds['seeds'][0]}'s ranking)"
        )
        info = (result.get("protocol") or {}).get("sasrec_ce") if name == BASELINE else None
        if info:
            sel, first = info["selected"], info["seeds"][0]
            line += (
                f"; max_len {sel['max_len']}, dropout {sel['dropout']:g} chosen on validation "
                f"(ndcg@{k} {first[f'valid_ndcg@{k}']:.4f}, best epoch {first['best_epoch']}), "
                f"{info['seconds_per_epoch']:.2f} s/epoch, {info['total_seconds']:.0f} s in all"
            )
        lines.append(line)
    return lines


def format_cold_table(cold: Mapping[str, Any]) -> str:
    """The cold-item protocol (recdb.tools.eval.cold): one row per method, then the targets."""
    p = cold["protocol"]
    kc, kg = p["k_candidates"], p["k_catalogue"]
    lines = [
        f"cold items: newest {100 * p['fraction']:g}% of items by first interaction = "
        f"{p['n_new_items']} new items with no events (T = {p['T_utc'][:10]}), "
        f"{p['users']} users who rated one, future share {p['future_share']:.4f}",
        "",
    ]
    cols = [f"ndcg@{kc}", f"hr@{kc}", "lift", f"recall@{kg}", f"ndcg@{kc}", f"exposure@{kg}"]
    head = f"{'method':<12}" + "".join(f"{c:>12}" for c in cols)
    lines += [f"{'':<12}{'-- candidates (new items) --':^36}{'-- catalogue --':^36}", head]
    lines.append("-" * len(head))
    for name, m in cold["methods"].items():
        c, g = m["candidates"], m.get("catalogue")
        row = f"{name:<12}{c[f'ndcg@{kc}']:>12.4f}{c[f'hr@{kc}']:>12.4f}{c['lift']:>11.2f}x"
        if g:
            row += f"{g[f'recall@{kg}']:>12.4f}{g[f'ndcg@{kc}']:>12.4f}{g[f'exposure@{kg}']:>12.4f}"
        else:
            row += f"{'-':>12}" * 3
        lines.append(row)
    lines.append("")
    lines += format_targets(cold["targets"])
    return "\n".join(lines)


def _main_panel(ax: Any, result: Mapping[str, Any], k: int) -> None:
    """Grouped bars of HR/NDCG/MRR@k per method of the main protocol."""
    import numpy as np

    names = list(result["methods"])
    keys = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}"]
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        vals = [result["methods"][n][key] for n in names]
        bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width, label=key.upper())
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    p = result["protocol"]
    ax.set_xticks(x, names)
    ax.set_ylabel("score")
    ax.set_title(
        f"{p['dataset']}, chronological leave-one-out, {p['users']} users, "
        "full ranking via rerank()",
        fontsize=9,
    )
    ax.legend()


def _cold_panel(ax: Any, cold: Mapping[str, Any]) -> None:
    """Cold items: candidates NDCG per method, catalogue recall/NDCG/exposure per encoder,
    the future share exposure is held to as a line."""
    import numpy as np

    p = cold["protocol"]
    kc, kg = p["k_candidates"], p["k_catalogue"]
    names = list(cold["methods"])
    keys = [
        ("candidates", f"ndcg@{kc}", f"candidates NDCG@{kc}"),
        ("catalogue", f"recall@{kg}", f"catalogue recall@{kg}"),
        ("catalogue", f"ndcg@{kc}", f"catalogue NDCG@{kc}"),
        ("catalogue", f"exposure@{kg}", f"exposure@{kg}"),
    ]
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    for j, (mode, key, label) in enumerate(keys):
        vals = [cold["methods"][n].get(mode, {}).get(key, np.nan) for n in names]
        bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width, label=label)
        ax.bar_label(
            bars, labels=["" if v != v else f"{v:.3f}" for v in vals], fontsize=6, padding=1
        )
    ax.axhline(p["future_share"], color="grey", linestyle="--", linewidth=1, label="future share")
    ax.set_xticks(x, names)
    ax.set_ylabel("score")
    ax.set_title(
        f"{p['dataset']}, {p['n_new_items']} new items without events, {p['users']} users",
        fontsize=9,
    )
    ax.legend(fontsize=7)


def write_plot(result: Mapping[str, Any], path: str | Path, k: int = K) -> None:
    """Grouped bars of HR/NDCG/MRR@k per method (matplotlib, headless), and a second panel
    for the cold-item protocol when the result has one, and one for --fresh."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recdb.tools.eval import fresh

    panels = []
    if "methods" in result:
        panels.append((max(6, 1.3 * len(result["methods"])), lambda ax: _main_panel(ax, result, k)))
    if "cold_items" in result:
        cold = result["cold_items"]
        panels.append((max(6, 1.6 * len(cold["methods"])), lambda ax: _cold_panel(ax, cold)))
    fresh_runs = fresh.results(result) if "methods" in result else {}
    if fresh_runs:  # --fresh N: stale / fold / encoded per encoder
        panels.append((max(5, 2.0 * len(fresh_runs)), lambda ax: fresh.plot_panel(ax, result, k)))
    if not panels:
        raise ValueError("nothing to plot: the result has no methods and no cold items")
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(w for w, _ in panels), 4), squeeze=False)
    for ax, (_, draw) in zip(axes[0], panels, strict=True):
        draw(ax)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
