"""JSON Lines: one JSON object per line; values keep their JSON types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from recdb.importer.records import RAW, ImportProblem, Record


class JsonlReader:
    """The file's columns are the keys of its first object (a key first seen later is
    read only when --map names it); a line without a column's key has no value there."""

    total: int | None = None
    declared = False

    def __init__(self, path: Path, *, encoding: str) -> None:
        self.path, self.encoding = path, encoding
        first = next((r for r in self.records(0, []) if r.error is None), None)
        self.columns: list[str] | None = None if first is None else list(first.data)

    def records(self, skip: int, wanted: list[str]) -> Iterator[Record]:
        row = 0
        line = 0
        with self.path.open(encoding=self.encoding) as f:
            try:
                for line, text in enumerate(f, 1):
                    if not text.strip():
                        continue
                    row += 1
                    if row <= skip:
                        continue
                    yield _record(row, line, text)
            except UnicodeDecodeError as exc:
                raise ImportProblem(
                    f"{self.path.name} near line {line + 1}: {exc} (pass --encoding)"
                ) from exc


def _record(row: int, line: int, text: str) -> Record:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Record(row, line, {RAW: text.rstrip("\r\n")}, "bad_record")
    return Record(row, line, data)
