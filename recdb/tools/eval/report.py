"""What `recdb eval` hands back: the per-method results, the table it prints, the plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recdb.tools.eval.protocol import K

# Per-phase fields that describe the run rather than the ranking: not repeated under "valid".
_RUN_FIELDS = frozenset(
    {"seconds", "encode_seconds", "rerank_ms_per_user", "train_seconds", "knobs"}
)


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
    return "\n".join(lines)


def write_plot(result: Mapping[str, Any], path: str | Path, k: int = K) -> None:
    """Grouped bars of HR/NDCG/MRR@k per method (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(result["methods"])
    keys = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}"]
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4))
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
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
