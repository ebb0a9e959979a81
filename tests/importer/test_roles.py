"""An import runs as a login role granted only recdb_app: what it writes is what the app
may write; the ledger records the role and is append-only for it."""

from __future__ import annotations

import psycopg
import pytest

from recdb.importer import ImportSpec, import_file
from tests.importer.files import count, events, queued_users, write
from tests.support.roles import connect_as, login_role


def test_the_app_role_imports_items_and_events(conn, db_url, tmp_path):
    app_login = login_role(conn, "recdb_app")
    catalog = write(tmp_path / "catalog.csv", [{"item_id": 1, "title": "One", "colour": "red"}])
    log = write(
        tmp_path / "log.csv",
        [
            {"user_id": 7, "item_id": 1, "kind": "like"},
            {"user_id": 8, "item_id": 2, "kind": "like"},  # unknown item: rejected
        ],
    )
    with connect_as(db_url, app_login) as app:
        s = import_file(app, catalog, ImportSpec("items", attrs=("colour",)))
        assert (s.inserted, s.rejected_total) == (1, 0)
        s = import_file(app, log, ImportSpec("events"))
        assert (s.loaded, dict(s.rejected)) == (1, {"unknown_item": 1})
        again = import_file(app, log, ImportSpec("events"))
        assert (again.loaded, again.skipped) == (0, 2)

        for statement in ("UPDATE recdb.imports SET loaded = 0", "DELETE FROM recdb.imports"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)

    assert [e[:3] for e in events(conn)] == [(7, 1, "like")]
    assert queued_users(conn) == {7}
    assert conn.execute("SELECT DISTINCT imported_by FROM recdb.imports").fetchall() == [
        (app_login,)
    ]
    assert count(conn, "imports") == 2


def test_the_readonly_role_cannot_import(conn, db_url, tmp_path):
    log = write(tmp_path / "log.csv", [{"user_id": 7, "item_id": 1, "kind": "like"}])
    with (
        connect_as(db_url, login_role(conn, "recdb_readonly")) as ro,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        import_file(ro, log, ImportSpec("events"))
    assert count(conn, "imports") == 0
