#!/bin/sh
# Runs once, when the postgres container initialises its data directory (as the DBA).
# Creates recdb's NOLOGIN group roles and two login roles that are members of them, so
# the application and the worker never connect as the superuser. Passwords come from the
# environment (docker-compose reads them from .env; see deploy/env.example).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$RECDB_APP_PASSWORD" -v worker_password="$RECDB_WORKER_PASSWORD" \
     -f /docker-entrypoint-initdb.d/recdb-roles.sql
