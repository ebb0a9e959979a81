"""One reader per file format, chosen by --format or the file's extension.

A reader knows its columns before reading when the format says (CSV header, Parquet
schema; JSONL: None) and yields Records after the first ``skip`` (rows an earlier run
loaded). Types are the format's own (CSV: text); PostgreSQL parses them (loader).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from recdb.importer.records import ImportProblem, Record

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class Reader(Protocol):
    columns: list[str] | None  # None: no record to tell
    declared: bool  # a header/schema lists every column (JSONL: only its first line's keys)
    total: int | None  # records, when cheap to know (for the progress bar)

    def records(self, skip: int, wanted: list[str]) -> Iterator[Record]: ...


def detect_format(path: Path, given: str | None) -> str:
    if given and given != "auto":
        if given not in FORMATS:
            raise ImportProblem(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise ImportProblem(f"cannot tell the format of {path.name} ({known}); pass --format")
    return fmt


def open_reader(path: Path, fmt: str, *, delimiter: str, encoding: str) -> Reader:
    if not path.is_file():
        raise ImportProblem(f"{path}: no such file")
    if fmt == "csv":
        from recdb.importer.readers.delimited import CsvReader

        return CsvReader(path, delimiter=delimiter, encoding=encoding)
    if fmt == "jsonl":
        from recdb.importer.readers.jsonl import JsonlReader

        return JsonlReader(path, encoding=encoding)
    from recdb.importer.readers.parquet import ParquetReader

    return ParquetReader(path)
