"""The database side of recdb: connections, the embedded server, the SQL files, alembic.

`connect`/`connection` turn configuration into a psycopg connection; `schema` runs the
migrations; `sqlfiles` finds the named queries; `scratch` makes throw-away databases.
"""

from recdb.db.connect import (
    connect,
    connection,
    database_url,
    libpq_url,
    register_numpy_vector,
    sqlalchemy_engine,
)

__all__ = [
    "connect",
    "connection",
    "database_url",
    "libpq_url",
    "register_numpy_vector",
    "sqlalchemy_engine",
]
