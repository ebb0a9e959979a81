"""The dashboard reads as recdb_readonly and writes nothing: its pool cannot write, page
loads leave every table as it was, a missing grant costs one panel (never a grant the
dashboard gives itself), and a login that cannot act as the role is refused up front."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from recdb.dashboard.db import open_pool
from tests.dashboard.pages import row_counts
from tests.dashboard.server import start_serve
from tests.support import REPO_ROOT
from tests.support.builders import add_items, axis
from tests.support.roles import with_role


def test_the_pool_acts_as_recdb_readonly_and_cannot_write(conn, db_url):
    add_items(conn, [{"item_id": 1, "embedding": axis(1)}])
    pool = open_pool(db_url, max_size=1)
    try:
        with pool.connection() as c:
            who = c.execute("SELECT current_user AS role, current_setting("
                            "'transaction_read_only') AS ro").fetchone()  # fmt: skip
            assert who == {"role": "recdb_readonly", "ro": "on"}
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 1, 'view')")
        with pool.connection() as c:
            c.read_only = False  # even out of read-only mode, the role itself may not write
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("DELETE FROM recdb.items")
        with pool.connection() as c:  # a pooled connection keeps both locks
            assert c.execute("SELECT current_user AS r").fetchone() == {"r": "recdb_readonly"}
    finally:
        pool.close()
    assert conn.execute("SELECT count(*) FROM recdb.items").fetchone()[0] == 1


PAGES = {
    "/": 200, "/users/1": 200, "/users/1?k=100": 200, "/users/405": 200, "/items/50": 200,
    "/items/1682": 200, "/models": 200, "/results": 200, "/results/eval.png": 200,
    "/metrics": 200, "/users/999999": 404, "/users/abc": 400, "/users?id=7": 303,
}  # fmt: skip


def test_page_loads_change_no_row(dashboard, ml_url):
    before = row_counts(ml_url)
    for path, status in PAGES.items():
        assert dashboard.get(path).status_code == status, path
    assert row_counts(ml_url) == before
    assert before["items"] == 1682 and before["events"] == 100_000


def test_a_missing_grant_costs_only_its_panel(conn, db_url, tmp_path):
    add_items(conn, [{"item_id": i, "title": f"item {i}"} for i in range(3)])
    conn.execute("REVOKE SELECT ON recdb.maintenance_status FROM recdb_readonly")
    served = start_serve(db_url, tmp_path)
    try:
        res = served.get("/")
        assert res.status_code == 200
        assert "recdb_readonly lacks a right this panel needs" in res.text
        assert "permission denied for view maintenance_status" in res.text
        assert 'class="num depth">3<' in res.text  # the queue panel still shows
        metrics = served.get("/metrics").text
        assert (
            "recdb_database_up 1.0" in metrics and 'recdb_queue_depth{queue="items"} 3.0' in metrics
        )
    finally:
        served.stop()
    # the dashboard granted itself nothing
    assert not conn.execute(
        "SELECT has_table_privilege('recdb_readonly', 'recdb.maintenance_status', 'SELECT')"
    ).fetchone()[0]


def test_a_login_that_cannot_act_as_recdb_readonly_is_told_what_to_grant(conn, db_url):
    url = with_role(db_url, conn, "recdb_app")  # a member of recdb_app only
    res = subprocess.run(
        [sys.executable, "-m", "recdb.cli", "serve", "--database-url", url, "--port", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert "cannot act as recdb_readonly" in res.stderr
    assert "GRANT recdb_readonly TO recdb_app_login_test" in res.stderr
    assert "Traceback" not in res.stderr
