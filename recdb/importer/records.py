"""What every reader yields: one record of the file, numbered for the summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RAW = "_raw"  # the data key of a line that is not a record (bad_record)


@dataclass(frozen=True, slots=True)
class Record:
    """``row``: 1-based ordinal among the file's records (what the ledger counts);
    ``line``: the line it starts on (CSV, JSONL; None for Parquet); ``data``: column ->
    value as the format gives it; ``error``: why it is not a record (then data is
    ``{RAW: text}``)."""

    row: int
    line: int | None
    data: dict[str, Any]
    error: str | None = None

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"row {self.row}"


class ImportProblem(ValueError):
    """The file or the options cannot be imported at all (unknown format, a mapped column
    the file lacks, undecodable text); the message says what to change. Bad rows are not
    problems: they are rejected and reported."""
