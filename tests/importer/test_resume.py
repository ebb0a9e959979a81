"""An import killed mid-way (SIGKILL: no cleanup of any kind) keeps exactly the chunks it
committed, and a re-run ends in the state one uninterrupted import gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from recdb.db import connect
from recdb.importer import ImportSpec, import_file, ledger
from recdb.importer.records import ImportProblem
from tests.importer.files import events, queued_users
from tests.support import REPO_ROOT

CHUNK = 100
ROWS = 10_000  # 100 chunks; the run is frozen (SIGSTOP) after its 3rd, then killed


def _log(path):
    lines = ["user_id,item_id,kind,value,occurred_at"]
    for n in range(ROWS):
        kind, value = ("rate", str(1 + n % 7)) if n % 3 == 0 else ("click", "")  # 6, 7: rejected
        lines.append(f"{n % 500},{1 + n % 50},{kind},{value},{1_700_000_000 + n}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _catalog(conn):
    conn.execute(
        "INSERT INTO recdb.items (item_id, title) SELECT i, 'item ' || i"
        " FROM generate_series(1, 50) i"
    )


def _ledger(conn):
    return conn.execute(
        "SELECT first_row, row_count, loaded, rejected FROM recdb.imports ORDER BY first_row"
    ).fetchall()


def _wait_for_its_session_to_end(conn) -> None:
    """Its server process may finish a COMMIT it had received before it notices."""
    deadline = time.monotonic() + 30
    while conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'recdb import' AND datname = current_database()"
    ).fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.faults
def test_a_killed_import_resumes_to_the_state_of_one_uninterrupted_import(
    conn, db_url, other_db_url, tmp_path, monkeypatch
):
    path = _log(tmp_path / "events.csv")
    _catalog(conn)
    cmd = [sys.executable, "-m", "recdb.cli", "import", "events", str(path)]
    cmd += ["--chunk-size", str(CHUNK), "--no-progress"]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env={**os.environ, "RECDB_DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_ledger(conn)) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)  # frozen wherever it is, holding its lock
        # meanwhile a second run of the same file is refused, not run alongside
        with monkeypatch.context() as m, pytest.raises(ImportProblem, match="another session"):
            m.setattr(ledger, "LOCK_WAIT_S", 0.2)
            import_file(conn, path, ImportSpec("events"), chunk_size=CHUNK)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _wait_for_its_session_to_end(conn)
    done = _ledger(conn)
    assert 3 <= len(done) < ROWS // CHUNK, "the kill landed after the import finished"
    # exactly the committed chunks' rows, no part of the chunk in flight
    assert len(events(conn)) == sum(r[2] for r in done)

    resumed = import_file(conn, path, ImportSpec("events"), chunk_size=CHUNK)
    assert resumed.skipped == len(done) * CHUNK
    assert resumed.skipped + resumed.rows == ROWS

    with connect(other_db_url, autocommit=True) as other:
        _catalog(other)
        whole = import_file(other, path, ImportSpec("events"), chunk_size=CHUNK)
        assert whole.rejected_total > 0  # rejects are part of what must match
        assert events(conn) == events(other)  # same rows in the same event id order
        assert _ledger(conn) == _ledger(other)
        assert queued_users(conn) == queued_users(other) == set(range(500))
