"""Thin wrappers over alembic so `recdb db ...` works from a pip-installed wheel too."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

from alembic import command
from alembic.config import Config

from recdb.db import database_url, sqlalchemy_engine
from recdb.db.sqlfiles import migrations_dir


def alembic_config(url: str | None = None, *, embedding_dim: int | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url:
        cfg.cmd_opts = None
        cfg.attributes["url"] = url
    if embedding_dim is not None:
        cfg.attributes["embedding_dim"] = embedding_dim
    return cfg


def _run_online(url: str | None, fn: Any, *args: Any, embedding_dim: int | None = None) -> None:
    engine = sqlalchemy_engine(database_url(url))
    try:
        with engine.begin() as conn:
            cfg = alembic_config(embedding_dim=embedding_dim)
            cfg.attributes["connection"] = conn
            fn(cfg, *args)
    finally:
        engine.dispose()


def upgrade(
    url: str | None = None, revision: str = "head", *, embedding_dim: int | None = None
) -> None:
    _run_online(url, command.upgrade, revision, embedding_dim=embedding_dim)


def downgrade(url: str | None = None, revision: str = "-1") -> None:
    _run_online(url, command.downgrade, revision)


def current(url: str | None = None) -> str | None:
    """The applied revision, or None for an unmigrated database."""
    from sqlalchemy import text

    engine = sqlalchemy_engine(database_url(url))
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT to_regclass('public.recdb_alembic_version')")
            ).scalar()
            if exists is None:
                return None
            return conn.execute(text("SELECT version_num FROM recdb_alembic_version")).scalar()
    finally:
        engine.dispose()


def offline_sql(revision: str = "head", *, embedding_dim: int | None = None) -> str:
    """The SQL an upgrade would run, for review by a DBA (no server needed)."""
    cfg = alembic_config(embedding_dim=embedding_dim)
    buf = io.StringIO()
    cfg.output_buffer = buf
    with redirect_stdout(buf):
        command.upgrade(cfg, f"base:{revision}" if ":" not in revision else revision, sql=True)
    return buf.getvalue()
