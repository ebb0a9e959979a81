"""`recdb import`: the README's commands as written, exit statuses, --json, and every
option's environment variable in --help."""

from __future__ import annotations

import csv
import json
import re
import shlex

import pytest

from recdb import cli
from tests.importer.files import events, items, write
from tests.support import REPO_ROOT

SECTION = "### Importing your own data"


def readme_commands() -> list[list[str]]:
    """The `recdb import` lines of the README's import subsection, continuations joined."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    block = re.search(r"```bash\n(.*?)```", text[start:], flags=re.DOTALL)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.startswith("recdb import")]


def test_the_readme_commands(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "catalog.csv",
        [
            {"sku": 1, "name": "Red shoe", "description": "Runs", "brand": "Acme", "color": "red"},
            {"sku": 2, "name": "Blue hat", "description": "", "brand": "Hatco", "color": "blue"},
        ],
    )
    write(
        tmp_path / "clicks.csv",
        [
            {"customer": 7, "sku": 1, "ts": "2024-03-01T10:00:00Z"},
            {"customer": 7, "sku": 3, "ts": "2024-03-01T10:05:00Z"},  # no item 3
            {"customer": 8, "sku": 2, "ts": "1709280000"},  # 08:00, first in time
        ],
    )
    items_cmd, events_cmd = readme_commands()

    assert cli.main(items_cmd[1:]) == 0
    out = capsys.readouterr().out
    assert "items from catalog.csv: 2 rows" in out and "2 new" in out

    assert cli.main(events_cmd[1:]) == 3  # done, but a row was rejected
    out = capsys.readouterr().out
    assert "unknown_item" in out and "line 3: item_id='3'" in out
    with (tmp_path / "rejects.csv").open(newline="") as f:
        rejected = list(csv.DictReader(f))
    assert [(r["_line"], r["_reason"], r["sku"]) for r in rejected] == [("3", "unknown_item", "3")]

    from recdb.db import connect

    with connect(db_url, autocommit=True) as conn:
        assert items(conn)[1] == ("Red shoe", "Runs", {"brand": "Acme", "color": "red"}, True)
        assert [e[:3] for e in events(conn)] == [(8, 2, "click"), (7, 1, "click")]

    assert cli.main(events_cmd[1:]) == 0  # again: nothing to load, nothing rejected
    assert "skipped   3 rows already imported" in capsys.readouterr().out


def test_json_summary_and_a_problem_exits_2(db_url, tmp_path, capsys):
    path = write(tmp_path / "items.jsonl", [{"id": 1, "name": "One"}])
    assert cli.main(["import", "items", str(path), "--map", "item_id=id,titel=name"]) == 2
    assert "recdb.items has no column titel" in capsys.readouterr().err

    args = ["import", "items", str(path), "--map", "item_id=id,title=name", "--json"]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["inserted"], summary["rejected"]) == (1, 1, {})


def test_options_read_their_environment_variables_shown_in_help(monkeypatch, capsys):
    """(tests/operations checks every option of every command names one.)"""
    monkeypatch.setenv("RECDB_IMPORT_CHUNK_SIZE", "7")
    monkeypatch.setenv("RECDB_IMPORT_MAP", "user_id=customer")
    args = cli.build_parser().parse_args(["import", "events", "x.csv"])
    assert (args.chunk_size, args.map) == (7, "user_id=customer")
    with pytest.raises(SystemExit):
        cli.main(["import", "--help"])
    shown = capsys.readouterr().out
    for var in ("FORMAT", "MAP", "ATTRS", "KIND_DEFAULT", "CHUNK_SIZE", "REJECTS"):
        assert f"RECDB_IMPORT_{var}]" in shown


@pytest.mark.parametrize("name", ["catalog.txt"])
def test_an_unknown_extension_asks_for_format(db_url, tmp_path, capsys, name):
    (tmp_path / name).write_text("item_id,title\n1,a\n")
    assert cli.main(["import", "items", str(tmp_path / name)]) == 2
    assert "pass --format" in capsys.readouterr().err
    assert cli.main(["import", "items", str(tmp_path / name), "--format", "csv"]) == 0
