"""A saved `recdb eval --json` result as the README's markdown (`recdb eval --markdown`):
the tables are rendered from the run's file, never typed in, so README figures can be
checked against the file they came from (tests/tools/test_readme_figures.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recdb.tools.eval import fresh as fresh_eval
from recdb.tools.eval import report
from recdb.tools.eval.protocol import K

# Row labels of the main table; any other method is a recdb user encoder.
LABELS = {
    "popularity": "popularity (baseline)",
    "item-knn": "item-kNN (baseline)",
    report.BASELINE: f"`{report.BASELINE}` = SASRec+ (baseline)",
    "popularity-rerank": "rerank() cold start (popularity prior only)",
}
SECTIONS = ("main", "fresh", "cold")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)]


def _targets(found: list[Mapping[str, Any]]) -> list[str]:
    return [f"- {line.strip()}" for line in report.format_targets(found)]


def main_table(result: Mapping[str, Any], k: int = K) -> str:
    """Every method's test figures (a seeded method's row is its first seed's ranking),
    then the seed means and the baseline targets."""
    methods = result["methods"]
    pop = methods.get("popularity", {}).get(f"ndcg@{k}") or 0.0
    rows = []
    for name, m in methods.items():
        label = LABELS.get(name, f"rerank(), `{name}` user encoder")
        if m.get("seeds"):
            label += f", trained in the run (seed {m['seeds']['seeds'][0]})"
        val = m.get("valid", {}).get(f"ndcg@{k}")
        rows.append(
            [label]
            + [f"{m[c]:.4f}" for c in (f"hr@{k}", f"ndcg@{k}", f"mrr@{k}")]
            + [f"{m[f'coverage@{k}']:.3f}", "-" if val is None else f"{val:.4f}"]
            + [f"{m[f'ndcg@{k}'] / pop:.2f}×" if pop else "-"]
        )
    head = ["method", f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", f"coverage@{k}", f"valid NDCG@{k}"]
    lines = _table([*head, "vs popularity"], rows)
    if seeds := report.format_seeds(result, k):
        lines += ["", *(f"- {line}" for line in seeds)]
    if found := report.targets(methods, k):
        lines += ["", *_targets(found)]
    return "\n".join(lines)


def fresh_table(result: Mapping[str, Any], k: int = K) -> str:
    """`--fresh N`: NDCG@k stale / folded by rerank() / re-encoded, per encoder."""
    fresh = fresh_eval.results(result)
    if not fresh:
        return ""
    n = next(iter(fresh.values()))["n"]
    key = f"ndcg@{k}"
    head = [
        "user encoder",
        f"stale (newest {n} unseen)",
        "fold (inserted, no worker)",
        "encoded (worker ran)",
        "fold / encoded",
    ]
    rows = []
    for name, f in fresh.items():
        ratio = f["fold_over_encoded"]
        stale, fold, encoded = (f"{f[state][key]:.4f}" for state in fresh_eval.STATES)
        rows.append(
            [f"`{name}`", stale, f"**{fold}**", encoded, "-" if ratio is None else f"{ratio:.3f}"]
        )
    return "\n".join(_table(head, rows))


def cold_table(result: Mapping[str, Any]) -> str:
    """`--cold-items`: candidates and catalogue figures per method, then the targets."""
    cold = result.get("cold_items")
    if not cold:
        return ""
    p = cold["protocol"]
    kc, kg = p["k_candidates"], p["k_catalogue"]
    head = ["method", f"candidates NDCG@{kc}", f"HR@{kc}", "lift vs random"]
    head += [f"catalogue recall@{kg}", f"catalogue NDCG@{kc}", f"exposure@{kg}"]
    rows = []
    for name, m in cold["methods"].items():
        c, g = m["candidates"], m.get("catalogue")
        row = [name, f"{c[f'ndcg@{kc}']:.4f}", f"{c[f'hr@{kc}']:.4f}", f"{c['lift']:.2f}×"]
        keys = (f"recall@{kg}", f"ndcg@{kc}", f"exposure@{kg}")
        row += [f"{g[key]:.4f}" for key in keys] if g else ["-"] * 3
        rows.append(row)
    return "\n".join([*_table(head, rows), "", *_targets(cold["targets"])])


def render(result: Mapping[str, Any], section: str, k: int = K) -> str:
    """One section of the report: "main", "fresh" or "cold" ("" when the run had none)."""
    if section == "main":
        return main_table(result, k) if "methods" in result else ""
    if section == "fresh":
        return fresh_table(result, k) if "methods" in result else ""
    if section == "cold":
        return cold_table(result)
    raise ValueError(f"unknown section {section!r}; one of {', '.join(SECTIONS)}")


def markdown(result: Mapping[str, Any], k: int = K) -> str:
    """Every section the run has, separated by blank lines."""
    return "\n\n".join(s for s in (render(result, name, k) for name in SECTIONS) if s) + "\n"
