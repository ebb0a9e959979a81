"""recdb.imports: which rows of which file are loaded (sql/v0007/imports.sql).

A file is its content: the source id is the sha256 of the file's bytes and of the spec
that reads it (target, format, mapping), so a renamed copy is the same import and a
changed file or mapping a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from recdb.db.sqlfiles import query
from recdb.importer.mapping import Resolved
from recdb.importer.records import ImportProblem

Q = "queries/import.sql"
_BLOCK = 1 << 20
# How long a run waits for another run of the same file (or a killed one's session).
LOCK_WAIT_S = 5.0


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    lines: int  # newlines: an upper bound on records, for the progress bar


def digest(path: Path) -> FileDigest:
    h, lines = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            lines += block.count(b"\n")
    return FileDigest(h.hexdigest(), lines)


def source_id(file_sha256: str, fmt: str, resolved: Resolved) -> str:
    spec = resolved.spec
    canonical = json.dumps(
        {
            "file": file_sha256,
            "target": spec.target,
            "format": fmt,
            "sources": resolved.sources,
            "attrs": list(spec.attrs),
            "kind_default": spec.kind_default,
            # how text is read: only where there is text to read
            "delimiter": spec.delimiter if fmt == "csv" else None,
            "encoding": spec.encoding if fmt != "parquet" else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Done:
    """What earlier runs loaded: rows before ``next_row``."""

    next_row: int
    rows: int


class Ledger:
    def __init__(self, conn: psycopg.Connection[Any], source: str, target: str, file_name: str):
        self.conn, self.source, self.target, self.file_name = conn, source, target, file_name

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held for the whole import: one run per source at a time."""
        args = {"source": self.source, "wait": f"{LOCK_WAIT_S * 1000:.0f}ms"}
        try:
            with self.conn.transaction():
                self.conn.execute(query(Q, "import_lock_wait"), args)
                self.conn.execute(query(Q, "import_lock_take"), args)
        except psycopg.errors.LockNotAvailable:
            raise ImportProblem(f"{self.file_name} is being imported by another session") from None
        try:
            yield
        finally:
            if not self.conn.broken:  # a lost session released it already
                self.conn.execute(query(Q, "import_unlock"), args)

    def done(self) -> Done:
        row = self.conn.execute(query(Q, "import_done"), {"source": self.source}).fetchone()
        assert row is not None
        return Done(int(row[0]), int(row[1]))

    def record(self, first_row: int, rows: int, loaded: int, rejected: Mapping[str, int]) -> None:
        """Inside the chunk's transaction: the rows and this line commit together."""
        self.conn.execute(
            query(Q, "import_record_chunk"),
            {
                "source": self.source,
                "first_row": first_row,
                "row_count": rows,
                "target": self.target,
                "file_name": self.file_name,
                "loaded": loaded,
                "rejected": Jsonb(dict(sorted(rejected.items()))),
            },
        )
