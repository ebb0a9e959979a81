"""`recdb db ...`: connection URL, migrations, offline SQL, the embedded server."""

from __future__ import annotations

import argparse
import sys


def cmd_url(args: argparse.Namespace) -> int:
    from recdb.db import database_url

    print(database_url())
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from recdb.db import schema

    schema.upgrade(revision=args.revision, embedding_dim=args.embedding_dim)
    print(f"database at revision {schema.current()}")
    return 0


def cmd_downgrade(args: argparse.Namespace) -> int:
    from recdb.db import schema

    schema.downgrade(revision=args.revision)
    print(f"database at revision {schema.current() or 'base'}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from recdb.db import schema

    sys.stdout.write(schema.offline_sql(args.revision, embedding_dim=args.embedding_dim))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from recdb.db import embedded

    print("embedded server stopped" if embedded.stop() else "embedded server was not running")
    return 0
