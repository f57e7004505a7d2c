"""Which fault mechanisms this machine has, and whether their absence is allowed.

A mechanism that is missing makes its fault kinds skip with a reason, unless
``RELAY247_REQUIRE_TOOLS`` (space-separated, set by ``.ci/run``) names the tool: then it
is a failure, as in the rest of the test suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class Missing(Exception):  # noqa: N818 - reads as "tool missing" where it is raised
    """A fault mechanism is not available here: ``tool`` and why."""

    def __init__(self, tool: str, why: str) -> None:
        super().__init__(f"{tool}: {why}")
        self.tool = tool
        self.why = why


def required(tool: str) -> bool:
    """True when ``RELAY247_REQUIRE_TOOLS`` names ``tool``."""
    return tool in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split()


FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
)


def faketime_lib() -> str:
    """The libfaketime (multi-threaded) library to preload, or :class:`Missing`."""
    for lib in FAKETIME_LIBS:
        if Path(lib).exists():
            return lib
    raise Missing("faketime", "libfaketime is not installed (Debian package faketime)")


def can_mount_tmpfs() -> None:
    """Raise :class:`Missing` unless a tmpfs can be mounted here (root, mount(8))."""
    if shutil.which("mount") is None:
        raise Missing("mount", "mount(8) is not installed")
    if os.geteuid() != 0:
        raise Missing("mount", "mounting a tmpfs needs root")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if out.returncode != 0:
            raise Missing("mount", f"cannot mount a tmpfs: {out.stderr.strip()}")
        subprocess.run(["umount", d], check=False, timeout=30)
