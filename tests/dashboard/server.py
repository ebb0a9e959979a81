"""`recdb serve` as a real subprocess on a free port, and plain HTTP against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running `recdb serve`: its base URL and its output files."""

    base: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def stop(self) -> int:
        """SIGTERM (what Ctrl-C and systemd send); the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_serve(url: str, logs: Path, *args: str, timeout: float = 60.0) -> Served:
    """Start `python -m recdb.cli serve --database-url URL --port P ARGS` and wait until it
    answers; its output goes to files under ``logs``."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / f"serve-{port}.out", logs / f"serve-{port}.err"
    cmd = [sys.executable, "-m", "recdb.cli", "serve", "--database-url", url, "--port", str(port)]
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [*cmd, *args], cwd=REPO_ROOT, stdout=o, stderr=e, env={**os.environ}
        )
    served = Served(f"http://127.0.0.1:{port}", proc, out, err)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"recdb serve exited {proc.returncode}: {served.output()}")
        try:
            if served.get("/metrics").status_code == 200:
                return served
        except httpx.TransportError:
            pass  # not listening yet: sleep, then poll again
        time.sleep(0.2)
    served.stop()
    raise AssertionError(f"recdb serve did not answer within {timeout}s: {served.output()}")
