"""Why a row is rejected: the codes sql/queries/import.sql and the readers give, in words,
and the recdb columns an example of each shows."""

from __future__ import annotations

# code -> (what it means, the staged columns to show in an example)
REASONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bad_record": ("not a record: wrong number of CSV fields, or a JSONL line not an object", ()),
    "bad_text": ("text holding a NUL character (PostgreSQL text cannot)", ()),
    "missing_id": ("no id", ("user_id", "item_id")),
    "bad_id": ("id not an integer (bigint)", ("user_id", "item_id")),
    "missing_title": ("no title (a new item needs one, and so does a mapped title)", ("item_id",)),
    "bad_attrs": ("attrs not a JSON object", ("item_id", "attrs")),
    "bad_available": ("available not a boolean", ("item_id", "available")),
    "bad_kind": ("kind missing or not in recdb.event_kinds", ("kind",)),
    "unknown_item": ("item_id not in recdb.items (import the items first)", ("item_id",)),
    "bad_value": ("value not a finite number", ("kind", "value")),
    "missing_value": ("no value for a valued kind (rate)", ("kind", "value")),
    "value_out_of_range": (
        "value outside its kind's [min_value, max_value] (recdb.event_kinds)",
        ("kind", "value"),
    ),
    "missing_time": ("no occurred_at", ("occurred_at",)),
    "bad_time": ("occurred_at not a time (ISO 8601 or Unix seconds) or infinite", ("occurred_at",)),
    "future_time": ("occurred_at after now() + recdb.settings.max_future_skew", ("occurred_at",)),
}


def describe(code: str) -> str:
    return REASONS.get(code, (code, ()))[0]


def shown(code: str) -> tuple[str, ...]:
    return REASONS.get(code, ("", ()))[1]
