"""`import recdb` stays light, and the client never pulls in the model stack."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT


def loaded_after(code: str, modules: list[str]) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_recdb_loads_no_database_or_model_code():
    assert loaded_after("import recdb", ["psycopg", "psycopg_pool", "torch", "numpy"]) == []


def test_the_clients_load_no_model_code():
    code = "import recdb; recdb.Client, recdb.AsyncClient; import recdb.sqlalchemy"
    assert loaded_after(code, ["torch", "transformers", "recdb.encoders", "recdb.worker"]) == []
