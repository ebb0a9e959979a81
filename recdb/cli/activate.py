"""`recdb activate MODEL_ID|none`: serve a stored model (or the text vectors again).

Projects every item with the model beside the served vectors (in chunks, while the old
model keeps being served and the worker keeps encoding), builds their HNSW index once,
then switches in one transaction (recdb.activate_model()): rerank() serves the old model
whole until the commit, the new one whole after. Users are re-encoded by the worker;
until then rerank() folds their newest events in the new space.
"""

from __future__ import annotations

import argparse
import json
import sys

from recdb.cli.options import add_option
from recdb.config import ACTIVATION_BUILD_MEMORY, ACTIVATION_CHUNK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model_id of recdb.models, or none (text vectors)")
    add_option(parser, "--device", default="cpu", help="where the model projects: cpu or cuda")
    add_option(
        parser,
        "--chunk",
        env_var="RECDB_ACTIVATION_CHUNK",
        type=int,
        default=ACTIVATION_CHUNK,
        help="items projected per transaction",
    )
    add_option(
        parser,
        "--build-memory",
        env_var="RECDB_ACTIVATION_BUILD_MEMORY",
        default=ACTIVATION_BUILD_MEMORY,
        help="maintenance_work_mem of the HNSW build (the graph should fit in it)",
    )
    add_option(parser, "--no-progress", flag=True, help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from recdb.db import connection
    from recdb.sequence.activation import activate
    from recdb.sequence.registry import ModelNotFound

    raw = str(args.model).strip().lower()
    if raw not in ("none", "null") and not raw.isdigit():
        print(f"recdb activate: MODEL must be a model_id or none, got {args.model!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    model_id = None if raw in ("none", "null") else int(raw)
    if args.chunk < 1:
        print(f"recdb activate: --chunk must be at least 1, got {args.chunk}", file=sys.stderr)
        return 2
    with connection(application_name="recdb activate") as conn:
        try:
            done = activate(
                conn,
                model_id,
                device=args.device,
                chunk=args.chunk,
                build_memory=args.build_memory,
                progress=not args.no_progress,
            )
        except ModelNotFound as exc:
            print(f"recdb activate: {exc}", file=sys.stderr)
            return 1
    print(json.dumps({
        "model_id": done.model_id, "staged": done.staged, "requeued": done.requeued,
        "stage_s": round(done.stage_s, 3), "build_s": round(done.build_s, 3),
        "switch_s": round(done.switch_s, 3),
    }))  # fmt: skip
    return 0
