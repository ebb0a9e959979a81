"""A real headless Chromium, driven from the command line (--dump-dom, --screenshot):
what a person's browser makes of the pages, with no driver library."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One Chromium binary; each call runs a fresh headless process with its own profile."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="recdb-chromium-") as profile:
            res = subprocess.run(
                [self.binary, *FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert res.returncode == 0, f"chromium failed ({res.returncode}): {res.stderr[-2000:]}"
        return res

    def dom(self, url: str) -> str:
        """The DOM after the page loaded, serialised."""
        return self._run("--dump-dom", url).stdout

    def screenshot(self, url: str, path: Path, size: tuple[int, int] = (1280, 900)) -> Path:
        self._run(f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
        return path
