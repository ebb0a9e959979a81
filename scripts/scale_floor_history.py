"""Every committed `recdb bench --scale` run's latency ratios beside the raw HNSW query's
(README "At scale": the growth target against what the bare index does on this machine).

Reads docs/bench_scale.json at each commit that changed it and renders the targets with
today's report code, so runs saved before the `floor` field existed are compared too.

    python scripts/scale_floor_history.py [--last N]
"""

from __future__ import annotations

import argparse
import json
import subprocess

from recdb.tools.bench.scale_report import SCALE_TARGETS, scale_targets

PATH = "docs/bench_scale.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--last", type=int, default=20, help="newest N runs")
    args = ap.parse_args()
    log = ["git", "log", f"-{args.last}", "--format=%h", "--", PATH]
    commits = subprocess.run(log, check=True, capture_output=True, text=True).stdout.split()
    growth, heavy = SCALE_TARGETS[1][0], SCALE_TARGETS[0][0]
    print("| run's commit | steps | served growth, worst class | raw HNSW growth, worst class "
          "| served heavy / light | raw HNSW heavy / light |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for c in commits:
        show = ["git", "show", f"{c}:{PATH}"]
        result = json.loads(subprocess.run(show, check=True, capture_output=True).stdout)
        t = {x["name"]: x for x in scale_targets(result)}
        steps = "/".join(f"{int(n) / 1e6:g}M" for n in sorted(result["scale"], key=int))
        cells = [t[growth]["measured"], t[growth]["floor"], t[heavy]["measured"], t[heavy]["floor"]]
        fmt = " | ".join("-" if v is None else f"{v:.2f}" for v in cells)
        print(f"| {result.get('machine', {}).get('commit', c)} | {steps} | {fmt} |")


if __name__ == "__main__":
    main()
