"""Ranking knobs of `recdb eval`: the presets, and setting/reading them in the eval database.

A knob mapping is ``{"settings": {col: value}, "event_kinds": {kind: {col: value}},
"encoders": {name: {"settings": {col: value}}}}``: recdb.settings columns, recdb.event_kinds
rows, and settings that apply only while one user encoder is measured. Every value is
written into the JSON protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from recdb.db.sqlfiles import query

_Q = "queries/eval.sql"

# "defaults" measures the schema as shipped. "tuned" was chosen on the validation split
# only (mean encoder, ML-100K): the co-visitation term reads each user's whole history
# (covisit_history 1000 instead of 200: val NDCG@10 0.0726 vs 0.0713; covisit_weight 4
# instead of 2 gave 0.0724). "content" is the earlier content-only tuning (no co-visitation:
# every rating counts as interest, popularity prior as strong as similarity, wide pool).
# "encoders" overrides knobs while one user encoder is measured: the trained sequence
# model needs less co-visitation help (validation NDCG@10 by covisit_weight: 0 -> 0.1043,
# 0.25 -> 0.1137, 0.5 -> 0.1122, 1 -> 0.1033, 2 -> 0.0907).
KNOB_PRESETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tuned": {
        "settings": {"covisit_history": 1000},
        "encoders": {"sequence": {"settings": {"covisit_weight": 0.25}}},
    },
    "content": {
        "settings": {
            "popularity_weight": 2.0,
            "candidate_factor": 50,
            "diversity_penalty": 0.0,
            "covisit_weight": 0.0,
        },
        "event_kinds": {"rate": {"value_center": 0, "value_scale": 5}},
    },
}
DEFAULT_PRESET = "tuned"

_SETTINGS_COLUMNS = frozenset({
    "popularity_weight", "popularity_half_life", "freshness_weight", "freshness_half_life",
    "diversity_penalty", "candidate_factor", "ef_search", "max_fold_events", "explain_history",
    "covisit_weight", "covisit_neighbors", "covisit_history", "covisit_fanout",
    "content_prior_weight",
    "explore_share", "explore_after",
})  # fmt: skip
_KIND_COLUMNS = frozenset({
    "weight", "half_life", "counts_as_seen", "min_value", "max_value", "value_center",
    "value_scale",
})  # fmt: skip


def resolve_knobs(spec: str) -> dict[str, Any]:
    """``--knobs``: a preset name or the path of a JSON file holding a knob mapping."""
    if spec in KNOB_PRESETS:
        return KNOB_PRESETS[spec]
    p = Path(spec)
    if p.is_file():
        return dict(json.loads(p.read_text()))
    raise ValueError(
        f"--knobs: {spec!r} is neither a preset ({', '.join(KNOB_PRESETS)}) nor a JSON file"
    )


def _check(knobs: Mapping[str, Any]) -> None:
    """Reject unknown sections, columns and per-encoder overrides other than settings."""
    unknown = set(knobs) - {"settings", "event_kinds", "encoders"}
    if unknown:
        raise ValueError(f"unknown knob section(s): {', '.join(sorted(unknown))}")
    for name, override in dict(knobs.get("encoders", {})).items():
        if set(override) - {"settings"}:
            raise ValueError(f"knobs for encoder {name!r}: only settings can be overridden")
        bad = set(override["settings"]) - _SETTINGS_COLUMNS
        if bad:
            raise ValueError(f"unknown knob(s) for encoder {name!r}: {', '.join(sorted(bad))}")
    kinds = dict(knobs.get("event_kinds", {}))
    bad = set(knobs.get("settings", {})) - _SETTINGS_COLUMNS | {
        c for cols in kinds.values() for c in cols if c not in _KIND_COLUMNS
    }
    if bad:
        raise ValueError(f"unknown knob(s): {', '.join(sorted(bad))}")


def _assignments(cols: Mapping[str, Any]) -> sql.Composed:
    """``col = value, ...`` (column names are checked against the known ones first)."""
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(v)) for c, v in cols.items()
    )


def apply_knobs(conn: psycopg.Connection[Any], knobs: Mapping[str, Any]) -> None:
    """Set recdb.settings columns and recdb.event_kinds rows from a knob mapping (the
    ``encoders`` section is only checked here: see encoder_settings)."""
    _check(knobs)
    settings = dict(knobs.get("settings", {}))
    kinds = dict(knobs.get("event_kinds", {}))
    with conn.transaction():
        if settings:
            conn.execute(sql.SQL("UPDATE recdb.settings SET {}").format(_assignments(settings)))
        for kind, cols in kinds.items():
            if cols:
                cur = conn.execute(
                    sql.SQL("UPDATE recdb.event_kinds SET {} WHERE kind = {}").format(
                        _assignments(cols), sql.Literal(kind)
                    )
                )
                if cur.rowcount != 1:
                    raise ValueError(f"unknown event kind {kind!r} in knobs")


def encoder_settings(
    knobs: Mapping[str, Any], base: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """Settings while encoder ``name`` is measured: its overrides, and the base value of
    every column another encoder overrides (so no override leaks into the next encoder)."""
    per = dict(knobs.get("encoders", {}))
    cols = {c for o in per.values() for c in o.get("settings", {})}
    return {**{c: base[c] for c in cols}, **per.get(name, {}).get("settings", {})}


def encoder_overrides(knobs: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The settings knobs give encoder ``name`` alone (None when there are none)."""
    return dict(knobs.get("encoders", {})).get(name, {}).get("settings") or None


def effective_knobs(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The ranking knobs in force (for the JSON protocol)."""

    def one(name: str) -> Any:
        row = conn.execute(query(_Q, name)).fetchone()
        assert row is not None
        return row[0]

    return {
        "settings": one("settings_as_json"),
        "event_kinds": {"rate": one("event_kinds_as_json")["rate"]},
    }
