"""The chunk loop: read, stage, check and load each chunk in one transaction with its
ledger row (the SQL: sql/queries/import.sql).

A row the checks reject is reported and skipped; only a problem with the file or the
options as a whole (recdb.importer.records.ImportProblem) or with the database stops the
import, and a re-run resumes after the last committed chunk.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg

from recdb.config import IMPORT_CHUNK_ROWS
from recdb.db.sqlfiles import query
from recdb.importer.ledger import Ledger, Q, digest, source_id
from recdb.importer.mapping import ImportSpec, Resolved, StagedRow, resolve
from recdb.importer.readers import detect_format, open_reader
from recdb.importer.records import ImportProblem, Record
from recdb.importer.rejects import RejectsFile, rejects_format
from recdb.importer.summary import Summary

# pg_input_is_valid(), which parses the file's text the way an INSERT would.
MIN_SERVER_VERSION = 160000


def import_file(
    conn: psycopg.Connection[Any],
    path: str | Path,
    spec: ImportSpec,
    *,
    chunk_size: int = IMPORT_CHUNK_ROWS,
    rejects: str | Path | None = None,
    progress: bool = False,
) -> Summary:
    """Import ``path`` into recdb.items or recdb.events (``spec.target``).

    ``conn`` must be in autocommit mode: every chunk commits on its own, with its ledger
    row, so an interrupted import keeps what it loaded and a re-run carries on after it.
    """
    if not conn.autocommit:
        raise ValueError("import_file needs an autocommit connection (a transaction per chunk)")
    if chunk_size < 1:
        raise ImportProblem(f"chunk size must be at least 1, got {chunk_size}")
    started = time.perf_counter()
    path = Path(path)
    rejects_path = None if rejects is None else Path(rejects)
    if rejects_path is not None:
        rejects_format(rejects_path)  # a bad name fails before any work
    _check_database(conn)
    fmt = detect_format(path, spec.format)
    reader = open_reader(path, fmt, delimiter=spec.delimiter, encoding=spec.encoding)
    resolved = resolve(spec, reader.columns, reader.declared)
    file_digest = digest(path)
    source = source_id(file_digest.sha256, fmt, resolved)
    ledger = Ledger(conn, source, spec.target, str(path.resolve()))
    summary = Summary(spec.target, path.name, source, resolved.describe())
    with ExitStack() as stack:
        stack.enter_context(ledger.locked())
        done = ledger.done()
        summary.skipped = done.rows
        columns = list(dict.fromkeys([*(reader.columns or ()), *resolved.wanted]))
        out = None
        if rejects_path is not None:
            out = stack.enter_context(RejectsFile(rejects_path, columns))
            summary.rejects_file = str(rejects_path)
        total = reader.total if reader.total is not None else file_digest.lines
        bar = stack.enter_context(_progress(max(total - done.rows, 0), spec.target, progress))
        stack.callback(_drop_tables, conn)
        conn.execute(query(Q, f"import_{spec.target}_tables"))
        records = reader.records(done.next_row - 1, resolved.wanted)
        for chunk in _chunks(records, chunk_size):
            _load_chunk(conn, ledger, resolved, chunk, summary, out)
            bar.update(len(chunk))
            bar.set_postfix(loaded=f"{summary.loaded:,}", rejected=f"{summary.rejected_total:,}")
    summary.seconds = time.perf_counter() - started
    return summary


def _load_chunk(
    conn: psycopg.Connection[Any],
    ledger: Ledger,
    resolved: Resolved,
    chunk: list[Record],
    summary: Summary,
    out: RejectsFile | None,
) -> None:
    target = resolved.spec.target
    staged: dict[int, tuple[Record, StagedRow]] = {}
    rejected: list[tuple[Record, StagedRow | None, str]] = []
    for record in chunk:
        row = resolved.stage(record)
        if isinstance(row, str):
            rejected.append((record, None, row))
        else:
            staged[record.row] = (record, row)
    params = {
        "set_title": resolved.writes("title"),
        "set_body": resolved.writes("body"),
        "set_attrs": resolved.writes("attrs"),
        "set_available": resolved.writes("available"),
        "has_time": resolved.writes("occurred_at"),
    }
    inserted = updated = checked_out = 0
    with conn.transaction():
        conn.execute(query(Q, "import_utc"))
        if staged:
            with conn.cursor() as cur, cur.copy(query(Q, f"import_{target}_copy")) as copy:
                for _, row in staged.values():
                    copy.write_row(row)
            conn.execute(query(Q, f"import_{target}_check"), params)
            if target == "items":
                flags = [r[0] for r in conn.execute(query(Q, "import_items_upsert"), params)]
                inserted, updated = sum(flags), len(flags) - sum(flags)
            else:
                conn.execute(query(Q, "import_events_insert"))
            for row_no, reason in conn.execute(query(Q, f"import_{target}_rejects")):
                record, row = staged[row_no]
                rejected.append((record, row, reason))
                checked_out += 1
        loaded = len(staged) - checked_out
        by_reason = Counter(reason for _, _, reason in rejected)
        ledger.record(chunk[0].row, len(chunk), loaded, by_reason)
    summary.chunks += 1
    summary.rows += len(chunk)
    summary.loaded += loaded
    summary.inserted += inserted
    summary.updated += updated
    for record, row, reason in sorted(rejected, key=lambda r: r[0].row):
        summary.reject(reason, record, row)
        if out is not None:
            out.write(record, reason)


def _check_database(conn: psycopg.Connection[Any]) -> None:
    version = conn.execute(query(Q, "import_server_version")).fetchone()
    if version is None or version[0] < MIN_SERVER_VERSION:
        found = "?" if version is None else version[0] // 10000
        raise ImportProblem(f"recdb import needs PostgreSQL 16 or later (this server: {found})")
    exists = conn.execute(query(Q, "import_ledger_exists")).fetchone()
    if not (exists and exists[0]):
        raise ImportProblem("the database has no recdb.imports: run `recdb db upgrade` first")


def _drop_tables(conn: psycopg.Connection[Any]) -> None:
    if not conn.broken:
        conn.execute(query(Q, "import_drop_tables"))


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _progress(total: int, target: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=f"import {target}",
        unit=" rows",
        unit_scale=True,
        disable=not enabled,
        leave=False,
    )
