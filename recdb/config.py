"""Settings read from RECDB_* environment variables, and the one copy of every default.

The CLI, the worker, the tools and the tests read their defaults and names from here, so
changing one changes it everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_EMBEDDING_DIM = 384
NOTIFY_CHANNEL = "recdb_work"

# User encoders. "auto" serves the active trained model when there is one, else "mean".
USER_ENCODER_NAMES = ("mean", "text", "sequence")
WORKER_USER_ENCODERS = ("auto", *USER_ENCODER_NAMES)
DEVICES = ("auto", "cpu", "cuda")

# Worker defaults (recdb worker options, WorkerConfig, the tools' in-process workers).
WORKER_BATCH_SIZE = 64
WORKER_USER_BATCH_SIZE = 500
WORKER_POLL_INTERVAL_S = 5.0
WORKER_MAX_ATTEMPTS = 5
WORKER_BACKOFF_S = 2.0
WORKER_MAX_HISTORY = 1000
# Item vectors a worker keeps between user batches (recdb.worker.item_cache): ~1.5 kB
# each at 384 dimensions, so 100,000 is ~160 MB of the worker's memory.
WORKER_ITEM_CACHE = 100_000
WORKER_POPULARITY_INTERVAL_S = 300.0
# The share of a core maintenance may hold while users wait to be re-encoded
# (recdb.worker.maintenance.Pace); 1: never yields.
WORKER_MAINTENANCE_DUTY = 0.5
WORKER_HEARTBEAT_INTERVAL_S = 10.0
# An item an app transaction holds is tried again after this long (no spinning on it).
WORKER_LOCK_DEFER_S = 1.0
# A worker frozen mid-batch (SIGSTOP, a stuck GPU) loses its claim after this long, so its
# rows go back to the other workers.
WORKER_CLAIM_TIMEOUT_S = 120.0

# recdb import: rows per chunk, each one transaction with its ledger row.
IMPORT_CHUNK_ROWS = 10_000

# recdb train: 15 minutes is the promise for ML-100K on 2 CPU cores; stop early enough to
# store the model.
TRAIN_TIME_BUDGET_S = 840.0
# Full softmax scores every target against the whole catalogue: (batch x len) x items
# logits, ~2.5 GB per step at 100k items. Above this many items, sampled softmax.
FULL_SOFTMAX_MAX_ITEMS = 20_000


# Model activation: items projected per transaction while staging, and the memory of
# the one HNSW build (the graph of 10^6 384-d vectors builds in RAM within ~2 GB; past
# maintenance_work_mem it builds on disk, several times slower).
ACTIVATION_CHUNK = 5_000
ACTIVATION_BUILD_MEMORY = "1GB"


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
