"""CSV (or any delimiter) with a header row; every value is text, an empty field none."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recdb.importer.records import RAW, ImportProblem, Record

# Item bodies can be long and recdb never truncates stored text: lift csv's 128 KiB cap.
FIELD_SIZE_LIMIT = 2**31 - 1


class CsvReader:
    total: int | None = None
    declared = True

    def __init__(self, path: Path, *, delimiter: str, encoding: str) -> None:
        if len(delimiter) != 1:
            raise ImportProblem(f"--delimiter must be one character, got {delimiter!r}")
        self.path, self.delimiter, self.encoding = path, delimiter, encoding
        csv.field_size_limit(FIELD_SIZE_LIMIT)
        with self._open() as f:
            header = next(self._rows(f), (0, []))[1]
        if not header:
            raise ImportProblem(f"{path.name}: empty, no header row")
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise ImportProblem(f"{path.name}: header repeats {', '.join(repeated)}")
        self.columns: list[str] | None = header

    def _open(self) -> Any:
        return self.path.open(newline="", encoding=self.encoding)

    def _rows(self, f: Any) -> Iterator[tuple[int, list[str]]]:
        """(line the record starts on, its fields)."""
        reader = csv.reader(f, delimiter=self.delimiter)
        read = 0
        try:
            for fields in reader:
                yield read + 1, fields
                read = reader.line_num
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportProblem(
                f"{self.path.name} near line {reader.line_num + 1}: {exc}"
                + (" (pass --encoding)" if isinstance(exc, UnicodeDecodeError) else "")
            ) from exc

    def records(self, skip: int, wanted: list[str]) -> Iterator[Record]:
        assert self.columns is not None
        columns, width = self.columns, len(self.columns)
        with self._open() as f:
            rows = self._rows(f)
            next(rows)  # the header
            row = 0
            for start, fields in rows:
                if not fields:  # a blank line
                    continue
                row += 1
                if row <= skip:
                    continue
                if len(fields) != width:
                    raw = self.delimiter.join(fields)
                    yield Record(row, start, {RAW: raw}, "bad_record")
                    continue
                yield Record(row, start, dict(zip(columns, fields, strict=True)))
