"""The operator-facing files: systemd unit, docker-compose, CLI help and env vars."""

from __future__ import annotations

import configparser
import json
import os
import re
import socket
import subprocess
import sys

import pytest
import yaml

from recdb.cli import build_parser
from recdb.worker import systemd
from tests.support import REPO_ROOT

ROOT = REPO_ROOT


def test_systemd_unit_parses_and_runs_the_worker():
    text = systemd.unit_text(exec_start="/opt/recdb/bin/recdb", env_file="/etc/recdb/w.env")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(text)
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["ExecStart"] == "/opt/recdb/bin/recdb worker"
    assert svc["Restart"] == "on-failure"
    assert svc["EnvironmentFile"] == "/etc/recdb/w.env"
    assert int(svc["WatchdogSec"]) > 0
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_sd_notify_sends_datagrams(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd.notify("READY=1")
        assert server.recv(64) == b"READY=1"
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        systemd.Watchdog()()
        assert server.recv(64) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.notify("READY=1") is False


def test_compose_file_names_the_right_services_and_commands():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    # sized for a recommender, not initdb's 128 MB (overridable from .env)
    assert "shared_buffers=${PG_SHARED_BUFFERS:-" in " ".join(services["db"]["command"])
    migrate = services["migrate"]
    assert migrate["entrypoint"] == ["alembic"] and migrate["command"][-2:] == ["upgrade", "head"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["RECDB_DATABASE_URL"].startswith("postgresql://")


def test_compose_uses_the_superuser_only_to_migrate_and_keeps_secrets_out():
    text = (ROOT / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    dba = services["db"]["environment"]["POSTGRES_USER"]
    assert services["migrate"]["environment"]["RECDB_DATABASE_URL"].startswith(
        f"postgresql://{dba}@"
    )
    worker_url = services["worker"]["environment"]["RECDB_DATABASE_URL"]
    assert f"//{dba}@" not in worker_url and "@" in worker_url
    # every published port is bound to the loopback interface
    assert all(str(p).startswith("127.0.0.1:") for p in services["db"]["ports"])
    # passwords come from .env (interpolated), never written in the file
    for svc in services.values():
        for key, value in (svc.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{key} is written in docker-compose.yml"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    roles_sql = (ROOT / "deploy/initdb/recdb-roles.sql").read_text()
    worker_user = worker_url.split("//")[1].split("@")[0]
    assert f"CREATE ROLE {worker_user} LOGIN PASSWORD :'worker_password' IN ROLE recdb_worker" in (
        roles_sql
    )
    assert "IN ROLE recdb_app" in roles_sql and "SUPERUSER" not in roles_sql


def _all_parsers(parser, prefix=()):
    yield prefix, parser
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            for name, sub in choices.items():
                yield from _all_parsers(sub, (*prefix, name))


def test_every_cli_option_names_its_env_var():
    missing = []
    for path, parser in _all_parsers(build_parser()):
        for action in parser._actions:
            for opt in action.option_strings:
                if (
                    opt.startswith("--")
                    and opt != "--help"
                    and not re.search(r"\[env: RECDB_[A-Z0-9_]+\]", action.help or "")
                ):
                    missing.append((" ".join(path), opt))
    assert not missing


def test_env_var_sets_an_option(monkeypatch):
    monkeypatch.setenv("RECDB_POLL_INTERVAL", "0.25")
    monkeypatch.setenv("RECDB_ONCE", "true")
    args = build_parser().parse_args(["worker"])
    assert args.poll_interval == 0.25 and args.once is True


def test_bad_env_value_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("RECDB_BATCH_SIZE", "many")
    with pytest.raises(SystemExit):
        build_parser()
    assert (
        "RECDB_BATCH_SIZE='many' is not a valid value for --batch-size" in capsys.readouterr().err
    )


def _recdb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recdb.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_json_has_the_design_keys(db_url):
    res = _recdb("status", "--json", env={"RECDB_DATABASE_URL": db_url})
    assert res.returncode == 0, res.stderr
    snap = json.loads(res.stdout)
    for key in (
        "queued_items",
        "queued_users",
        "parked",
        "workers",
        "items_embedded",
        "items_total",
        "users_embedded",
    ):
        assert key in snap


def test_status_on_unmigrated_database(empty_db_url):
    res = _recdb("status", env={"RECDB_DATABASE_URL": empty_db_url})
    assert res.returncode == 0 and "not migrated" in res.stdout


def test_cli_error_is_one_clear_line(tmp_path):
    res = _recdb("status", env={"RECDB_DATABASE_URL": f"postgresql:///nope?host={tmp_path}"})
    assert res.returncode == 1
    assert res.stderr.startswith("recdb: error:") and "Traceback" not in res.stderr
