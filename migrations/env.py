"""Alembic environment for recdb.

The database comes from, in order: a SQLAlchemy connection handed over in
config.attributes["connection"] (alembic cookbook: sharing a connection), `-x url=...`,
RECDB_DATABASE_URL, or the embedded server. Offline mode (--sql) needs no server.
"""

from __future__ import annotations

from alembic import context

from recdb.db import database_url, sqlalchemy_engine

VERSION_TABLE = "recdb_alembic_version"
config = context.config


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or database_url()


def run_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        # named paramstyle: otherwise every % in the SQL (format(), RAISE) is printed as %%
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, version_table=VERSION_TABLE, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sqlalchemy_engine(_url())
    with engine.connect() as conn:
        context.configure(
            connection=conn, version_table=VERSION_TABLE, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
