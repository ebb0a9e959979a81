"""`recdb status`: queues, workers, coverage and the active model, as text or JSON."""

from __future__ import annotations

import argparse
import json


def main(args: argparse.Namespace) -> int:
    from recdb import status
    from recdb.db import connection

    with connection(autocommit=True, application_name="recdb status") as conn:
        snap = status.collect(conn)
    print(json.dumps(snap, indent=2, default=str) if args.json else status.render(snap))
    return 0
