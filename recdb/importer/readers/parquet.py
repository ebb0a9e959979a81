"""Parquet through pyarrow (the `import` extra), read in record batches of the columns
the mapping needs; values keep their Arrow types (ints, floats, timestamps, lists).
Nanosecond timestamps (pandas' default) become microseconds, PostgreSQL's precision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recdb.importer.records import ImportProblem, Record

BATCH_ROWS = 8192


class ParquetReader:
    declared = True

    def __init__(self, path: Path) -> None:
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError as exc:
            raise ImportProblem(
                "reading Parquet needs pyarrow: pip install 'recdb[import]'"
            ) from exc
        try:
            self.file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid for a non-Parquet file
            raise ImportProblem(f"{path.name}: not a Parquet file ({exc})") from exc
        self.columns: list[str] | None = list(self.file.schema_arrow.names)
        self.total: int | None = self.file.metadata.num_rows

    def records(self, skip: int, wanted: list[str]) -> Iterator[Record]:
        seen = 0
        for batch in self.file.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            n = batch.num_rows
            if seen + n > skip:
                start = max(0, skip - seen)
                for i, data in enumerate(_microseconds(batch.slice(start)).to_pylist()):
                    yield Record(seen + start + i + 1, None, data)
            seen += n


def _microseconds(batch: Any) -> Any:
    import pyarrow as pa

    def cast(column: Any) -> Any:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.unit == "ns":
            return column.cast(pa.timestamp("us", kind.tz), safe=False)
        return column

    return pa.RecordBatch.from_arrays([cast(c) for c in batch.columns], names=batch.schema.names)
