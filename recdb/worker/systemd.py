"""systemd integration: the unit `recdb systemd-unit` prints, and sd_notify pings.

The worker runs as Type=notify: READY=1 once connected and encoders are loaded,
WATCHDOG=1 at half the watchdog interval while the loop is alive (a hung worker is
restarted by systemd), STOPPING=1 on shutdown. No dependency on python-systemd.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time

UNIT = """\
# recdb worker: encodes queued items and users into vectors for rerank().
# Install: recdb systemd-unit > /etc/systemd/system/recdb-worker.service
#          then put RECDB_DATABASE_URL=... (and RECDB_MODEL, RECDB_DEVICE, ...) into {env_file}
#          systemctl daemon-reload && systemctl enable --now recdb-worker
# More workers: copy to recdb-worker@.service; they share the queues through SKIP LOCKED.
[Unit]
Description=recdb encoding worker
Documentation=https://github.com/recdb/recdb#operations
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start} worker
EnvironmentFile={env_file}
Environment=PYTHONUNBUFFERED=1
User={user}
Restart=on-failure
RestartSec=5
WatchdogSec={watchdog}
# SIGTERM finishes the batch in progress; give it time before SIGKILL.
KillSignal=SIGTERM
TimeoutStopSec=120
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=/var/lib/recdb

[Install]
WantedBy=multi-user.target
"""


def unit_text(
    exec_start: str | None = None,
    env_file: str = "/etc/recdb/worker.env",
    user: str = "recdb",
    watchdog: int = 60,
) -> str:
    exe = exec_start or shutil.which("recdb") or f"{sys.executable} -m recdb.cli"
    return UNIT.format(exec_start=exe, env_file=env_file, user=user, watchdog=watchdog)


def notify(message: str) -> bool:
    """Send an sd_notify datagram; False (and nothing done) outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(message.encode())
    return True


class Watchdog:
    """Pings WATCHDOG=1 no more often than half of WATCHDOG_USEC."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        self.interval = int(usec) / 2e6 if usec and usec.isdigit() else None
        self._last = 0.0

    def __call__(self, *_: object) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            notify("WATCHDOG=1")
            self._last = now
