"""--rejects PATH: every rejected row of this run, as read, with its row, line and reason.

CSV (``.csv``) or JSON Lines (``.jsonl``/``.ndjson``). Ours are the ``_row``, ``_line``,
``_reason`` columns (and ``_raw``: a line that was not a record); the file's own columns
follow under their names, so the rows can be fixed and imported again with the same --map.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from recdb.importer.records import RAW, ImportProblem, Record

OURS = ("_row", "_line", "_reason")
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def rejects_format(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportProblem(f"--rejects {path.name}: end it in .csv or .jsonl")
    return fmt


class RejectsFile:
    """Opened (truncated) before the first chunk. ``columns``: the file's columns and the
    mapped ones (other keys a later JSONL line adds are not kept)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.format = rejects_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = path.open("w", newline="", encoding="utf-8")
        self.columns = [c for c in columns if c not in (*OURS, RAW)]
        self.csv: csv.DictWriter[str] | None = None
        if self.format == "csv":
            self.csv = csv.DictWriter(self.file, [*OURS, *self.columns, RAW])
            self.csv.writeheader()

    def write(self, record: Record, reason: str) -> None:
        """Every line has every column (a JSONL file's columns are its first line's)."""
        row: dict[str, Any] = {"_row": record.row, "_line": record.line, "_reason": reason}
        row |= {c: record.data.get(c) for c in self.columns}
        if RAW in record.data:
            row[RAW] = record.data[RAW]
        if self.csv is None:
            self.file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            self.csv.writerow({k: _cell(v) for k, v in row.items()})

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.file.close()


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else value
