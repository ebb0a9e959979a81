"""`recdb import`: an adopter's own items and events from CSV, JSONL or Parquet.

Chunks of the file are COPYed into a temp table, checked set-based in SQL (a bad row is
reported with its reason, never aborts the import) and loaded with one statement each,
in one transaction with a ledger row (recdb.imports), so a re-run resumes after the last
loaded chunk and never loads a row twice. Modules: `records` (what readers yield),
`readers` (one per format), `mapping` (file columns -> recdb columns), `ledger`,
`reasons`, `rejects` (the --rejects file), `summary`, `loader` (the chunk loop).
"""

from recdb.importer.loader import import_file
from recdb.importer.mapping import ImportSpec
from recdb.importer.records import ImportProblem
from recdb.importer.summary import Summary

__all__ = ["ImportProblem", "ImportSpec", "Summary", "import_file"]
