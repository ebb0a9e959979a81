"""`recdb import items|events PATH`: options and the summary of recdb.importer."""

from __future__ import annotations

import argparse
import json
import sys

from recdb.cli.options import add_option
from recdb.config import IMPORT_CHUNK_ROWS

EXIT_REJECTED = 3  # the import finished, some rows were rejected (see the summary)

EPILOG = """\
Columns: a recdb column reads the file column of the same name unless --map names
another; columns the file lacks are left alone (a new item gets the default, an
existing one keeps its value; events without a time happen now). CSV needs a header
row; the columns of a JSONL file are the keys of its first line.
Values: ids are integers; times are ISO 8601 (no zone: UTC) or Unix seconds; in CSV an
empty field is no value. Bad rows are rejected with a reason, never the whole import.
Re-running the same file (same content and options) loads only what an earlier run did
not: an interrupted import resumes, a finished one loads nothing twice.
Exit status: 0 done; 3 done, but rows were rejected; 2 the file or options cannot be
imported."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("target", choices=("items", "events"), help="what the file holds")
    parser.add_argument("path", metavar="PATH", help="a .csv, .jsonl/.ndjson or .parquet file")
    add_option(
        parser,
        "--format",
        env_var="RECDB_IMPORT_FORMAT",
        default="auto",
        choices=("auto", "csv", "jsonl", "parquet"),
        help="file format (auto: by the file's extension)",
    )
    add_option(
        parser,
        "--map",
        env_var="RECDB_IMPORT_MAP",
        metavar="COLUMN=FILE_COLUMN,...",
        help="which file column feeds which recdb column, e.g. item_id=sku,title=name"
        " (items: item_id, title, body, attrs (a JSON object), available;"
        " events: user_id, item_id, kind, value, occurred_at)",
    )
    add_option(
        parser,
        "--attrs",
        env_var="RECDB_IMPORT_ATTRS",
        metavar="FILE_COLUMN,...",
        help="items: gather these file columns into attrs, e.g. brand,color",
    )
    add_option(
        parser,
        "--kind-default",
        env_var="RECDB_IMPORT_KIND_DEFAULT",
        metavar="KIND",
        help="events: the kind of rows without one (a file of purchases: purchase)",
    )
    add_option(
        parser,
        "--delimiter",
        env_var="RECDB_IMPORT_DELIMITER",
        default=",",
        help="CSV field separator ('\\t' or tab for a tab)",
    )
    add_option(
        parser,
        "--encoding",
        env_var="RECDB_IMPORT_ENCODING",
        default="utf-8-sig",
        help="text encoding of a CSV or JSONL file (utf-8-sig reads UTF-8 with or without BOM)",
    )
    add_option(
        parser,
        "--chunk-size",
        env_var="RECDB_IMPORT_CHUNK_SIZE",
        type=int,
        default=IMPORT_CHUNK_ROWS,
        metavar="N",
        help="rows per transaction (and per ledger row in recdb.imports)",
    )
    add_option(
        parser,
        "--rejects",
        env_var="RECDB_IMPORT_REJECTS",
        metavar="PATH",
        help="write every rejected row with its reason here (.csv or .jsonl)",
    )
    add_option(parser, "--json", env_var="RECDB_IMPORT_JSON", flag=True, help="print JSON")
    add_option(parser, "--no-progress", flag=True, help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from recdb.db import connection
    from recdb.importer import ImportSpec, import_file
    from recdb.importer.mapping import parse_list, parse_map
    from recdb.importer.records import ImportProblem

    try:
        spec = ImportSpec(
            target=args.target,
            format=args.format,
            mapping=parse_map(args.map),
            attrs=parse_list(args.attrs),
            kind_default=args.kind_default or None,
            delimiter={"\\t": "\t", "tab": "\t"}.get(args.delimiter, args.delimiter),
            encoding=args.encoding,
        )
        with connection(autocommit=True, application_name="recdb import") as conn:
            summary = import_file(
                conn,
                args.path,
                spec,
                chunk_size=args.chunk_size,
                rejects=args.rejects,
                progress=not args.no_progress and not args.json,
            )
    except ImportProblem as exc:
        print(f"recdb import: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.as_json(), indent=2) if args.json else summary.render())
    return EXIT_REJECTED if summary.rejected else 0
