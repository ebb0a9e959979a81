"""Reading the dashboard's DOM: the rows of a table, what rerank() says directly."""

from __future__ import annotations

import re
from typing import Any

from recdb.db import connect


def table(dom: str, table_id: str) -> str:
    """The HTML of <table id=table_id> (an AssertionError when the page has none)."""
    m = re.search(rf'<table id="{table_id}".*?</table>', dom, re.S)
    assert m, f"no table #{table_id} in the page"
    return m.group(0)


def item_ids(dom: str, table_id: str) -> list[int]:
    """The data-item-id of each row of the table, in page order."""
    return [int(x) for x in re.findall(r'data-item-id="(-?\d+)"', table(dom, table_id))]


def sql(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """A direct query as the test's admin (not through the dashboard)."""
    with connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def row_counts(url: str) -> dict[str, int]:
    """Rows of every table in schema recdb."""
    with connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'recdb' ORDER BY 1"
        )]  # fmt: skip
        return {
            n: conn.execute(f'SELECT count(*) FROM recdb."{n}"').fetchone()[0]  # type: ignore[index]
            for n in names
        }
