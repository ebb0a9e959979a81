"""Which file column feeds which recdb column, and the staged text row of a record.

A recdb column is read from the file column --map names, else from the file column of
the same name; a column the file lacks is not written (an existing item keeps its
value, a new one gets the default; events without a time column happen now()).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from recdb.importer.records import ImportProblem, Record

Target = Literal["items", "events"]
# What a file may write, in the order the staging tables take it (sql/queries/import.sql).
COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("item_id", "title", "body", "attrs", "available"),
    "events": ("user_id", "item_id", "kind", "value", "occurred_at"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "items": ("item_id",),
    "events": ("user_id", "item_id", "kind"),
}
StagedRow = tuple[Any, ...]  # (row, text or None per column of COLUMNS[target])


def parse_map(text: str | None) -> dict[str, str]:
    """'item_id=sku,title=name' -> {'item_id': 'sku', 'title': 'name'}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        column, sep, source = (s.strip() for s in part.partition("="))
        if not sep or not column or not source:
            raise ImportProblem(f"--map: {part.strip()!r} is not COLUMN=FILE_COLUMN")
        if column in out:
            raise ImportProblem(f"--map names {column} twice")
        out[column] = source
    return out


def parse_list(text: str | None) -> tuple[str, ...]:
    """'brand, color' -> ('brand', 'color')."""
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


@dataclass(frozen=True)
class ImportSpec:
    """What an import reads and how; with the file's content it names the ledger source,
    so a re-run with the same spec resumes and one with another spec is a new import.

    ``mapping``: recdb column -> file column. ``attrs``: file columns gathered into the
    item's attrs object (else a mapped ``attrs`` column holds a JSON object).
    ``kind_default``: the kind of events whose file has no kind or an empty one."""

    target: Target
    format: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    attrs: Sequence[str] = ()
    kind_default: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8-sig"

    def __post_init__(self) -> None:
        if self.target not in COLUMNS:
            raise ImportProblem(f"nothing to import into {self.target!r}: items or events")
        unknown = sorted(set(self.mapping) - set(COLUMNS[self.target]))
        if unknown:
            raise ImportProblem(
                f"--map: recdb.{self.target} has no column {', '.join(unknown)}"
                f" (its columns: {', '.join(COLUMNS[self.target])})"
            )
        if self.attrs and self.target != "items":
            raise ImportProblem("--attrs is for items")
        if self.attrs and "attrs" in self.mapping:
            raise ImportProblem("--attrs and --map attrs=... exclude each other")
        if self.kind_default and self.target != "events":
            raise ImportProblem("--kind-default is for events")


@dataclass(frozen=True)
class Resolved:
    """A spec applied to a file's columns: what each staged column is read from."""

    spec: ImportSpec
    sources: dict[str, str]  # recdb column -> file column, for the columns the file has

    @property
    def wanted(self) -> list[str]:
        """File columns to read (Parquet reads only these)."""
        return list(dict.fromkeys([*self.sources.values(), *self.spec.attrs]))

    def writes(self, column: str) -> bool:
        return column in self.sources or (column == "attrs" and bool(self.spec.attrs))

    def describe(self) -> str:
        parts = [c if s == c else f"{c}={s}" for c, s in self.sources.items()]
        if self.spec.attrs:
            parts.append(f"attrs=[{','.join(self.spec.attrs)}]")
        if self.spec.kind_default:
            parts.append(f"kind default {self.spec.kind_default}")
        return ", ".join(parts)

    def stage(self, record: Record) -> StagedRow | str:
        """The record as the staging table's text row, or why it cannot be staged."""
        if record.error:
            return record.error
        data, spec = record.data, self.spec
        row: list[str | None] = []
        for column in COLUMNS[spec.target]:
            if column == "attrs" and spec.attrs:
                kept = {c: data[c] for c in spec.attrs if data.get(c) not in (None, "")}
                value = json.dumps(kept, ensure_ascii=False, default=str)
            else:
                source = self.sources.get(column)
                value = None if source is None else as_text(data.get(source))
                if column == "kind" and value is None:
                    value = spec.kind_default
            if value is not None and "\x00" in value:
                return "bad_text"
            row.append(value)
        return (record.row, *row)


def resolve(spec: ImportSpec, columns: Sequence[str] | None, declared: bool) -> Resolved:
    """Apply the spec to the file's columns (``declared``: a header or schema lists them
    all, so a mapped column the file lacks is an error, not an empty column)."""
    have = set(columns or ())
    sources: dict[str, str] = {}
    for column in COLUMNS[spec.target]:
        if column in spec.mapping:
            sources[column] = spec.mapping[column]
        elif column in have or columns is None:
            sources[column] = column
    if spec.attrs:
        sources.pop("attrs", None)
    if declared:
        lacking = [s for s in [*spec.mapping.values(), *spec.attrs] if s not in have]
        if lacking:
            raise ImportProblem(
                f"the file has no column {', '.join(lacking)} (it has: {', '.join(columns or ())})"
            )
    needed = [c for c in REQUIRED[spec.target] if c not in sources]
    if spec.kind_default:
        needed = [c for c in needed if c != "kind"]
    if needed:
        hint = " or --kind-default KIND" if "kind" in needed else ""
        raise ImportProblem(
            f"no file column for {', '.join(needed)} (the file has: {', '.join(columns or ())});"
            f" name it with --map {needed[0]}=COLUMN{hint}"
        )
    return Resolved(spec, sources)


def as_text(value: Any) -> str | None:
    """A file value as PostgreSQL input text; an empty string is no value."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        return str(value.isoformat())
    return str(value)
