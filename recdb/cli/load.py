"""`recdb load movielens`: options and the summary printed after a bulk load."""

from __future__ import annotations

import argparse
import sys

from recdb.cli.options import add_movielens_path_option, add_option


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["movielens"], help="dataset to load")
    add_movielens_path_option(parser)
    add_option(parser, "--no-progress", flag=True, help="no progress bars")


def main(args: argparse.Namespace) -> int:
    from recdb.datasets.loader import load_movielens
    from recdb.datasets.movielens import MovieLensNotFound, find_movielens
    from recdb.db import connection

    try:
        find_movielens(args.path)
    except MovieLensNotFound as exc:
        print(f"recdb load: {exc}", file=sys.stderr)
        return 2
    with connection(autocommit=True, application_name="recdb load") as conn:
        c = load_movielens(conn, args.path, progress=not args.no_progress)
    print(
        f"MovieLens-100K from {c['source']}\n"
        f"  items   {c['items']}: {c['items_inserted']} new, {c['items_updated']} changed, "
        f"{c['items_unchanged']} unchanged\n"
        f"  events  {c['events']}: {c['events_inserted']} new, "
        f"{c['events_skipped']} already loaded"
        + (f", {c['events_unknown_item']} on unknown items" if c["events_unknown_item"] else "")
        + f"\n  users   {c['users']}\n  loaded in {c['seconds']:.1f}s"
        + (
            ""
            if not c["items_inserted"] + c["items_updated"]
            else "; run `recdb worker` to encode the new items"
        )
    )
    return 0
