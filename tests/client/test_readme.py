"""The README's Python examples are the files in examples/, and each one runs."""

from __future__ import annotations

import re
import runpy

from fastapi.testclient import TestClient

from tests.support import REPO_ROOT
from tests.support.builders import axis, set_user_vector

EXAMPLES = REPO_ROOT / "examples"
SECTIONS = ("### Client", "### SQLAlchemy")


def readme_blocks() -> list[str]:
    """The ```python blocks of the README's Client and SQLAlchemy subsections."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for heading in SECTIONS:
        start = text.index(f"\n{heading}\n") + len(heading) + 2
        end = start + re.search(r"\n#{2,3} ", text[start:]).start()
        blocks += re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    return blocks


def test_readme_examples_are_the_files_in_examples():
    shown = {}
    for block in readme_blocks():
        first = block.splitlines()[0]
        assert first.startswith("# examples/"), f"a README block not from examples/: {first}"
        shown[first[2:]] = block
    assert sorted(shown) == sorted(f"examples/{p.name}" for p in EXAMPLES.glob("*.py"))
    for path, block in shown.items():
        assert (REPO_ROOT / path).read_text(encoding="utf-8") == block, f"{path} drifted"


def test_client_example_runs(db_url, capsys):
    runpy.run_path(str(EXAMPLES / "client_basics.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    # items are not embedded (no worker here): user 42 gets the cold-start order, the
    # filter keeps the crime films and the one clicked is excluded; 2 events folded in
    assert lines[0] == "1 8 0.000 new 2"
    assert lines[1] == "[9, 8, 7]"
    assert lines[2].startswith('23503 insert or update on table "events"')
    assert "Key (kind)=(clik)" in lines[3]


def test_fastapi_example_serves_rerank_and_maps_errors(db_url, conn, catalog):
    app = runpy.run_path(str(EXAMPLES / "fastapi_app.py"))["app"]
    set_user_vector(conn, 42, axis(1))
    with TestClient(app) as http:
        assert (
            http.post("/users/42/events", params={"item_id": 200, "kind": "click"}).status_code
            == 204
        )
        got = http.get("/users/42/recommendations", params={"k": 3})
        assert got.status_code == 200
        body = got.json()
        assert [r["rank"] for r in body] == [1, 2, 3]
        assert all(200 < r["item_id"] < 300 and r["fresh_events"] == 1 for r in body)
        bad = http.post("/users/42/events", params={"item_id": 200, "kind": "clik"})
        assert bad.status_code == 422 and bad.json()["sqlstate"] == "23503"
        bad_k = http.get("/users/42/recommendations", params={"k": 0})
        assert bad_k.status_code == 422 and "k must be between" in bad_k.json()["detail"]
