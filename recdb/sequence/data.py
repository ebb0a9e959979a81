"""What `recdb train` learns from: the items' text vectors and every user's events, read
from the database in one consistent snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from recdb.db.sqlfiles import query
from recdb.sequence.model import Event

_Q = "queries/train.sql"


@dataclass
class TrainingData:
    """Catalogue (ids + text vectors), chronological histories and the event watermark."""

    item_ids: list[int]
    text: np.ndarray
    histories: dict[int, list[Event]]
    watermark: int

    @property
    def n_events(self) -> int:
        return sum(len(h) for h in self.histories.values())


class NoTrainingData(ValueError):
    """The database has nothing to learn from yet (say what to do about it)."""


def read(conn: psycopg.Connection[Any]) -> TrainingData:
    """Snapshot of catalogue + events (REPEATABLE READ: the watermark matches the events)."""
    prev = conn.isolation_level
    if not conn.autocommit:
        conn.rollback()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            cat = conn.execute(query(_Q, "catalog_text"), binary=True).fetchall()
            rows = conn.execute(query(_Q, "histories")).fetchall()
            row = conn.execute(query(_Q, "watermark")).fetchone()
    finally:
        conn.isolation_level = prev
    if not cat:
        raise NoTrainingData(
            "no item has a text embedding yet: load items and run the worker "
            "(`recdb worker --once`) before `recdb train`"
        )
    histories = {
        int(user): list(zip(items, kinds, vals, ts, strict=True))
        for user, items, kinds, vals, ts in rows
    }
    if not histories:
        raise NoTrainingData("recdb.events is empty: nothing to learn from")
    return TrainingData(
        item_ids=[int(r[0]) for r in cat],
        text=np.stack([r[1] for r in cat]).astype(np.float32),
        histories=histories,
        watermark=int(row[0]) if row else 0,
    )


def hold_out_last(
    histories: Mapping[int, Sequence[Event]], known_items: set[int], min_events: int = 3
) -> tuple[dict[int, list[Event]], dict[int, int]]:
    """(training sequences, validation item per user): each user with at least
    ``min_events`` events keeps the last one out, the chronological leave-one-out split.

    Events on items without a text vector are dropped (the model cannot represent them).
    """
    train: dict[int, list[Event]] = {}
    valid: dict[int, int] = {}
    for user, events in histories.items():
        usable = [e for e in events if e[0] in known_items]
        if len(usable) >= min_events:
            train[user], valid[user] = usable[:-1], int(usable[-1][0])
        elif usable:
            train[user] = usable
    return train, valid
