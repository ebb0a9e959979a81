"""What an import did: counts, rejected rows by reason with a few examples, timing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from recdb.importer import reasons
from recdb.importer.mapping import COLUMNS, StagedRow
from recdb.importer.records import RAW, Record

EXAMPLES = 3  # per reason, in the summary (--rejects has them all)
_SHOWN_CHARS = 40


@dataclass
class Summary:
    """``rows``: records this run read (after ``skipped``, the rows earlier runs loaded);
    ``loaded``: rows written or already equal (items: ``inserted`` new, ``updated``
    changed, the rest unchanged or repeated)."""

    target: str
    file: str
    source: str
    mapping: str
    rows: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    chunks: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    rejects_file: str | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def reject(self, code: str, record: Record, staged: StagedRow | None) -> None:
        self.rejected[code] += 1
        shown = self.examples.setdefault(code, [])
        if len(shown) < EXAMPLES:
            shown.append(_example(self.target, code, record, staged))

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "file": self.file,
            "source": self.source,
            "mapping": self.mapping,
            "rows": self.rows,
            "loaded": self.loaded,
            "inserted": self.inserted,
            "updated": self.updated,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "rejected": dict(self.rejected),
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s),
        }

    def _loaded_detail(self) -> str:
        if self.target == "events":
            return "; their users are queued for `recdb worker`" if self.loaded else ""
        unchanged = self.loaded - self.inserted - self.updated
        detail = f": {self.inserted:,} new, {self.updated:,} changed, {unchanged:,} unchanged"
        return detail + ("; `recdb worker` encodes them" if self.inserted + self.updated else "")

    def render(self) -> str:
        head = f"{self.target} from {self.file}: "
        if self.rows:
            head += (
                f"{_n(self.rows, 'row')} in {_n(self.chunks, 'chunk')}, {self.seconds:.1f} s"
                f" ({self.rows_per_s:,.0f} rows/s)"
            )
        else:
            head += "nothing new to load"
        out = [head, f"  columns   {self.mapping}"]
        if self.skipped:
            out.append(f"  skipped   {_n(self.skipped, 'row')} already imported (an earlier run)")
        if self.rows:
            out.append(f"  loaded    {self.loaded:,}{self._loaded_detail()}")
        if self.rejected:
            out.append(f"  rejected  {self.rejected_total:,}")
            width = max(map(len, self.rejected))
            for code, n in self.rejected.most_common():
                out.append(f"    {code:<{width}}  {n:>7,}  {reasons.describe(code)}")
                out += [f"    {'':<{width}}           {e}" for e in self.examples.get(code, [])]
            if self.rejects_file:
                out.append(f"  every rejected row, with its reason: {self.rejects_file}")
        return "\n".join(out)


def _example(target: str, code: str, record: Record, staged: StagedRow | None) -> str:
    columns = COLUMNS[target]
    if staged is None:
        values = [f"{_short(record.data[RAW])}"] if RAW in record.data else []
    else:
        shown = [c for c in reasons.shown(code) if c in columns]
        values = [f"{c}={_short(staged[1 + columns.index(c)])}" for c in shown]
    return f"{record.where}: {', '.join(values)}" if values else record.where


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
