"""A second migrated database, to compare an interrupted import with an uninterrupted one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from recdb.db import scratch
from tests.support.database import TEMPLATE


@pytest.fixture
def other_db_url(server_url: str, template_url: str) -> Iterator[str]:
    name = f"recdb_test_{os.getpid()}_other_{uuid.uuid4().hex[:6]}"
    url = scratch.recreate(server_url, name, template=TEMPLATE)
    try:
        yield url
    finally:
        scratch.drop(server_url, name)
