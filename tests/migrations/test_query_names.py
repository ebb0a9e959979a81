"""Named queries (sql/queries/*.sql, `-- name: x`) are unique across every file.

One name, one query: `grep -- '-- name: x'` finds it, and a module reading the wrong
file cannot silently get another module's statement of the same name.
"""

from __future__ import annotations

import re
from collections import defaultdict

from recdb.db.sqlfiles import queries, sql_dir


def test_query_names_are_unique_across_files():
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        relative = f"queries/{path.name}"
        named = re.findall(r"^--\s*name:\s*(\w+)\s*$", path.read_text(), flags=re.M)
        assert len(named) == len(queries(relative)), f"{relative} repeats a name: {named}"
        for name in queries(relative):
            where[name].append(path.name)
    repeated = {name: files for name, files in where.items() if len(files) > 1}
    assert not repeated, f"query names used in more than one file: {repeated}"
