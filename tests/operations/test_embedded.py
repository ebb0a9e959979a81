"""The embedded server trusts local connections, so who can reach it matters."""

from __future__ import annotations

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
