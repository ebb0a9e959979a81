"""Locate and load the SQL that lives in sql/ (the repo) or recdb/_sql (the wheel).

Queries are kept in .sql files, as procrastinate does: a file holds one or more
statements introduced by `-- name: <query_name>` lines.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # recdb/


def _first_existing(*candidates: Path) -> Path:
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "recdb cannot find its SQL/migration files; looked in: "
        + ", ".join(str(c) for c in candidates)
    )


def sql_dir() -> Path:
    return _first_existing(_PACKAGE / "_sql", _PACKAGE.parent / "sql")


def migrations_dir() -> Path:
    return _first_existing(_PACKAGE / "_migrations", _PACKAGE.parent / "migrations")


def read_sql(relative: str, **placeholders: object) -> str:
    """Read sql/<relative> and replace @NAME@ placeholders; unknown ones are an error."""
    text = (sql_dir() / relative).read_text(encoding="utf-8")
    for name, value in placeholders.items():
        text = text.replace(f"@{name.upper()}@", str(value))
    left = sorted(set(re.findall(r"@([A-Z_]+)@", text)))
    if left:
        raise ValueError(f"{relative}: placeholders without a value: {', '.join(left)}")
    return text


@cache
def queries(relative: str) -> dict[str, str]:
    """Named queries of a file: {name: sql}."""
    text = (sql_dir() / relative).read_text(encoding="utf-8")
    parts = re.split(r"^--\s*name:\s*(\w+)\s*$", text, flags=re.MULTILINE)
    named = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        named[name] = body.strip()
    return named


def query(relative: str, name: str) -> str:
    try:
        return queries(relative)[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in sql/{relative}") from None
