"""A PostgreSQL cluster of the soak's own, so that it can be restarted and killed.

The machine's shared server (port 5432) is never touched: ``initdb`` makes a cluster in
a temporary directory, owned by the ``postgres`` user when we are root (the server
refuses to run as root), and ``pg_ctl`` runs it on a free loopback port with trust
authentication. Missing binaries raise :class:`Missing` (the soak skips the kinds that
need it, unless ``RELAY247_REQUIRE_TOOLS`` names ``initdb``).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.tools import Missing

WAIT = 60.0  # seconds: a start or restart on a loaded 2-core machine


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise Missing("initdb", "no /usr/lib/postgresql/*/bin/initdb on this machine")
    return Path(found[-1]).parent


class PgCluster:
    """One private cluster: ``start``, ``restart`` (fast or immediate), ``kill``."""

    def __init__(self, root: Path, port: int) -> None:
        self.bin = _bindir()
        self.root = root
        self.data = root / "pgdata"
        self.port = port
        self.log = root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise Missing("initdb", "root without runuser cannot run PostgreSQL")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=WAIT, check=False
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stderr or out.stdout}")
        return out

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        # fsync stays on: a restart or kill must not lose what PostgreSQL acknowledged.
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-instructions", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
            " -c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", opts, "-w", "-t", str(int(WAIT)), "start")  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast`` (clean) or ``-m immediate`` (crash recovery after)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-m", mode, "-w", "-t", str(int(WAIT)), "restart")  # fmt: skip

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status",
                         check=False).returncode == 0  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends then exit on their own)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + WAIT
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)  # waiting for the backends to notice, not a timing claim

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop",
                  check=False)  # fmt: skip
