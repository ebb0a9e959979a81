"""Migrations create recdb's group roles NOLOGIN; a pre-existing role with extra powers is
refused unless the DBA says it is meant that way."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from recdb.db import schema


def test_a_recdb_role_that_can_log_in_is_not_adopted_silently(
    empty_db_url, server_url, monkeypatch
):
    schema.upgrade(empty_db_url, "0004", embedding_dim=4)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("ALTER ROLE recdb_worker LOGIN CREATEROLE")
        try:
            with pytest.raises(DBAPIError, match=r"recdb_worker \(LOGIN, CREATEROLE\)"):
                schema.upgrade(empty_db_url, embedding_dim=4)
            assert schema.current(empty_db_url) == "0004"
            monkeypatch.setenv("RECDB_ADOPT_ROLES", "true")
            schema.upgrade(empty_db_url, embedding_dim=4)
            assert schema.current(empty_db_url) not in (None, "0004")
        finally:
            admin.execute("ALTER ROLE recdb_worker NOLOGIN NOCREATEROLE")
