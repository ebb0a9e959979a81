"""The embedded server trusts local connections, so who can reach it matters."""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from recdb.db import embedded


def test_recdb_home_stays_private_and_the_socket_inside_it():
    home = Path(tempfile.mkdtemp(prefix="rh-"))
    home.chmod(0o755)
    try:
        url = embedded.start(home, cleanup="stop")
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert f"host={home / 'pgdata'}" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded.stop(home)


def test_a_home_too_long_for_a_private_socket_is_refused(tmp_path):
    home = tmp_path / ("x" * 120)
    with pytest.raises(embedded.EmbeddedUnavailable, match="RECDB_HOME is too long"):
        embedded.start(home)
    assert not (home / "pgdata").exists()


def test_a_new_home_gets_shared_buffers_sized_by_the_machine():
    """At first start of a kept home (the CLI's), not initdb's 128 MB."""
    home = Path(tempfile.mkdtemp(prefix="rh-"))
    try:
        url = embedded.start(home)
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW shared_buffers").fetchone() == (embedded.shared_buffers(),)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def test_shared_buffers_is_a_quarter_of_the_memory_within_bounds(monkeypatch):
    monkeypatch.delenv("RECDB_EMBEDDED_SHARED_BUFFERS", raising=False)
    gib = 1024**3
    assert embedded.shared_buffers(24 * gib) == "6144MB"
    assert embedded.shared_buffers(gib // 4) == "128MB"  # never below initdb's default
    assert embedded.shared_buffers(256 * gib) == "16384MB"
    monkeypatch.setenv("RECDB_EMBEDDED_SHARED_BUFFERS", "2GB")
    assert embedded.shared_buffers(24 * gib) == "2GB"
