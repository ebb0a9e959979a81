"""What a migrated database looks like, as sets of rows that two databases can compare.

Every recdb object a revision can create or change: functions (signature, result, full
definition, SECURITY DEFINER, SET clauses, grants), columns, constraints, indexes,
triggers, table/column/schema grants and comments. Extension-owned objects (pgvector's
functions in public) are left out; the recdb roles are cluster-wide and named as such.
"""

from __future__ import annotations

import difflib
from typing import Any

import psycopg

# Functions of schema recdb and recdb's wrappers in public (not pgvector's).
_FUNCTIONS = """
    p.pronamespace IN ('recdb'::regnamespace, 'public'::regnamespace)
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
"""
_RELATIONS = "c.relnamespace = 'recdb'::regnamespace"

QUERIES: dict[str, str] = {
    "functions": f"""
        SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid), p.prokind,
               p.prosecdef, p.proconfig::text, p.provolatile, p.proisstrict, p.proparallel,
               pg_get_functiondef(p.oid)
        FROM pg_proc p WHERE {_FUNCTIONS}""",
    "function_grants": f"""
        SELECT p.oid::regprocedure::text, a.privilege_type, a.is_grantable,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
               a.grantor = p.proowner
        FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
        WHERE {_FUNCTIONS}""",
    "columns": f"""
        SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE {_RELATIONS} AND c.relkind IN ('r', 'p', 'v', 'm')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": f"""
        SELECT c.oid::regclass::text, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE {_RELATIONS}""",
    "indexes": f"""
        SELECT pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE {_RELATIONS}""",
    "triggers": f"""
        SELECT pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE {_RELATIONS} AND NOT t.tgisinternal""",
    "table_grants": f"""
        SELECT c.oid::regclass::text, a.privilege_type, a.is_grantable,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
        FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE {_RELATIONS}""",
    "column_grants": f"""
        SELECT c.oid::regclass::text, t.attname, a.privilege_type, a.is_grantable,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
        FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
        WHERE {_RELATIONS} AND t.attacl IS NOT NULL""",
    "schema": """
        SELECT n.nspname, a.privilege_type,
               CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
               obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        WHERE n.nspname = 'recdb'""",
    "comments": f"""
        SELECT c.oid::regclass::text, obj_description(c.oid, 'pg_class')
        FROM pg_class c WHERE {_RELATIONS} AND obj_description(c.oid, 'pg_class') IS NOT NULL""",
}


COLUMNS: dict[str, list[str]] = {}  # column names of each query, filled by catalog()
# How many leading columns name the object, where one row is one object (grants are not).
KEYS = {"functions": 1, "columns": 2, "constraints": 2, "comments": 1}


def catalog(url: str) -> dict[str, set[tuple[Any, ...]]]:
    out = {}
    with psycopg.connect(url) as c:
        for name, q in QUERIES.items():
            cur = c.execute(q)
            COLUMNS[name] = [d.name for d in cur.description or []]
            out[name] = set(map(tuple, cur.fetchall()))
    return out


def _show(row: tuple[Any, ...]) -> str:
    text = " | ".join(str(v) for v in row)
    return text if len(text) < 300 else text[:300] + " ..."


def _compare(kind: str, a: tuple[Any, ...], b: tuple[Any, ...], a_name: str, b_name: str):
    """Field by field, with a line diff for long text (function definitions)."""
    names = COLUMNS.get(kind) or [str(i) for i in range(len(a))]
    for field, x, y in zip(names, a, b, strict=True):
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, str) and "\n" in x + y:
            diff = difflib.unified_diff(
                x.splitlines(), y.splitlines(), a_name, b_name, lineterm="", n=1
            )
            yield f"    {field}:"
            yield from (f"      {line}" for line in list(diff)[:60])
        else:
            yield f"    {field}: {x!r} ({a_name}) vs {y!r} ({b_name})"


def differences(
    a: dict[str, set[tuple[Any, ...]]], b: dict[str, set[tuple[Any, ...]]], a_name: str, b_name: str
) -> str:
    """'' when equal, otherwise what only one side has, by category; an object on both
    sides (same KEYS columns) is compared field by field."""
    out = []
    for kind in QUERIES:
        only_a, only_b = a[kind] - b[kind], b[kind] - a[kind]
        if not (only_a or only_b):
            continue
        out.append(f"== {kind}")
        width = KEYS.get(kind)
        by_key_b = {r[:width]: r for r in only_b} if width else {}
        for row in sorted(only_a, key=str):
            twin = by_key_b.get(row[:width]) if width else None
            if twin is not None:
                out.append(f"  changed: {' '.join(map(str, row[:width]))}")
                out += _compare(kind, row, twin, a_name, b_name)
                only_b.discard(twin)
            else:
                out.append(f"  only in {a_name}: {_show(row)}")
        out += [f"  only in {b_name}: {_show(r)}" for r in sorted(only_b, key=str)]
    return "\n".join(out)


def assert_same(a: dict, b: dict, a_name: str = "left", b_name: str = "right") -> None:
    diff = differences(a, b, a_name, b_name)
    assert not diff, f"catalogs differ ({a_name} vs {b_name}):\n{diff}"
