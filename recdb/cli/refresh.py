"""`recdb refresh [--full]`: run maintenance now (popularity, co-visitation, retention).

Without --full, popularity applies only the events added, deleted or updated since its
last run and co-visitation only the users re-encoded since then (what the worker's
maintenance thread does on its interval); --full rebuilds both from every event, and the
list of brand-new items (recdb.new_items) from every item (after changes made with the
triggers off, or to check the incremental state).
"""

from __future__ import annotations

import argparse
import json
import time

from recdb.cli.options import add_option


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--full",
        flag=True,
        help="rebuild popularity and co-visitation from every event, new items from every item",
    )


def main(args: argparse.Namespace) -> int:
    from recdb.db import connection
    from recdb.worker.maintenance import run_jobs

    started = time.monotonic()
    with connection(application_name="recdb refresh") as conn:
        done = run_jobs(conn, full=args.full)
    print(json.dumps({**done, "seconds": round(time.monotonic() - started, 3)}))
    return 0
