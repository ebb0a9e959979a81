"""The machine, server and code a bench ran on, so its figures can be read in context."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from recdb.tools.bench.db import connect, q

_REPO = Path(__file__).resolve().parents[3]  # the checkout, when run from one


def git_commit() -> str | None:
    """`git rev-parse --short HEAD` of the checkout the bench runs from (None when it is
    not a git checkout, e.g. an installed wheel, or git is missing)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return None


def mem_available_gib() -> float | None:
    """MemAvailable of /proc/meminfo (None off Linux): memory other processes hold (another
    database server, say) is gone from it, and a run short of it reads its tables from
    disk; a reader of the figures should see that."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def end_of_run() -> dict[str, Any]:
    """The load average and available memory at the end of a run (machine_info has them
    at the start)."""
    return {
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "mem_available_gib_at_end": mem_available_gib(),
    }


def machine_info() -> dict[str, Any]:
    """The host and the code, before anything runs (load average and available memory at
    the start)."""
    info: dict[str, Any] = {
        "commit": git_commit(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "mem_available_gib_at_start": mem_available_gib(),
        "numpy": np.__version__,
    }
    with contextlib.suppress(OSError):  # /proc is Linux-only; the figures are optional
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    with contextlib.suppress(ImportError):
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
    return info


def server_info(url: str) -> dict[str, Any]:
    """PostgreSQL, pgvector and the settings that move the figures (url: a bench database,
    where the vector extension is installed)."""
    info: dict[str, Any] = {}
    with connect(url, "machine") as conn, conn.cursor() as cur:
        row = cur.execute(q("server_info")).fetchone()
        assert row is not None and cur.description is not None
        info.update(zip((col.name for col in cur.description), row, strict=True))
    info["server"] = (
        "embedded (pgserver)" if not os.environ.get("RECDB_DATABASE_URL") else "RECDB_DATABASE_URL"
    )
    return info
