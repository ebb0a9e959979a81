"""What the tests share: the database server, builders, a tiny text model, a worker process."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
