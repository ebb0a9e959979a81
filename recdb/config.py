"""Settings read from RECDB_* environment variables (the CLI maps each option onto one)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_EMBEDDING_DIM = 384
NOTIFY_CHANNEL = "recdb_work"


def env(name: str, default: str | None = None) -> str | None:
    """RECDB_<NAME> or the default; empty strings count as unset."""
    value = os.environ.get(f"RECDB_{name}")
    return value if value not in (None, "") else default


def recdb_home() -> Path:
    """Where the embedded server, caches and the model cache live."""
    home = env("HOME")
    if home:
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "recdb"


def embedding_dim() -> int:
    """The dimension fixed at the first migration (RECDB_EMBEDDING_DIM)."""
    raw = env("EMBEDDING_DIM", str(DEFAULT_EMBEDDING_DIM))
    assert raw is not None
    try:
        dim = int(raw)
    except ValueError:
        raise ValueError(f"RECDB_EMBEDDING_DIM must be an integer, got {raw!r}") from None
    if not 1 <= dim <= 16000:
        raise ValueError(f"RECDB_EMBEDDING_DIM must be between 1 and 16000, got {dim}")
    return dim
