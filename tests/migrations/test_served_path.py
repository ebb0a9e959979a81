"""Revision 0006: what rerank() reads stays cheap to read on databases that upgrade to it."""

from __future__ import annotations

import numpy as np
import psycopg

from recdb.db import schema

DIM = 384  # the shipped encoder's: two such vectors pass the 2 kB TOAST threshold


def _vec(seed: int) -> str:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def _out_of_line(c: psycopg.Connection, column: str) -> list[bool]:
    return [
        r[0]
        for r in c.execute(
            f"SELECT pg_column_toast_chunk_id({column}) IS NOT NULL FROM recdb.items ORDER BY 1"
        ).fetchall()
    ]


def test_upgrade_moves_the_served_vector_into_the_row(empty_db_url):
    schema.upgrade(empty_db_url, revision="0005", embedding_dim=DIM)
    with psycopg.connect(empty_db_url) as c:
        for i in range(3):
            c.execute(
                "INSERT INTO recdb.items (item_id, title, embedding, text_embedding)"
                " VALUES (%s, 'x', %s::vector, %s::vector)",
                (i, _vec(i), _vec(100 + i)),
            )
        before = c.execute("SELECT embedding::text FROM recdb.items ORDER BY item_id").fetchall()
        # the problem 0006 fixes: every served vector lived in the TOAST table
        assert _out_of_line(c, "embedding") == [True, True, True]
        c.execute("DELETE FROM recdb.item_queue")
    schema.upgrade(empty_db_url, embedding_dim=DIM)
    with psycopg.connect(empty_db_url) as c:
        assert _out_of_line(c, "embedding") == [False, False, False]
        assert _out_of_line(c, "text_embedding") == [True, True, True]
        after = c.execute("SELECT embedding::text FROM recdb.items ORDER BY item_id").fetchall()
        assert after == before
        assert c.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 0
        # and a row written after the upgrade, as the worker writes it
        c.execute("INSERT INTO recdb.items (item_id, title) VALUES (9, 'y')")
        c.execute(
            "UPDATE recdb.items SET embedding = %s::vector, text_embedding = %s::vector"
            " WHERE item_id = 9",
            (_vec(9), _vec(109)),
        )
        assert c.execute(
            "SELECT pg_column_toast_chunk_id(embedding) FROM recdb.items WHERE item_id = 9"
        ).fetchone() == (None,)
