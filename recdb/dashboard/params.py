"""Parsing what a URL carries: ids are bigints and k is bounded, or the request is a 400
whose page says why (the raw text is shown escaped, cut short, never interpreted)."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
K_DEFAULT, K_MAX = 20, 100
_INT = re.compile(r"[+-]?[0-9]{1,19}")


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 60 else raw[:60] + "…")


def parse_id(raw: str, what: str) -> int:
    """A user or item id (bigint)."""
    text = raw.strip()
    if _INT.fullmatch(text) and BIGINT_MIN <= int(text) <= BIGINT_MAX:
        return int(text)
    raise HTTPException(400, f"{_shown(raw)} is not a {what} id: ids are 64-bit integers")


def parse_k(raw: str | None) -> int:
    """How many results a ranking shows: 1..K_MAX (default K_DEFAULT)."""
    if raw is None or raw == "":
        return K_DEFAULT
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= K_MAX:
        return int(text)
    raise HTTPException(400, f"k={_shown(raw)}: k must be an integer from 1 to {K_MAX}")
