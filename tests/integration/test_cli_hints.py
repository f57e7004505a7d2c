"""Follow-up commands that `init` prints run as pasted (issue 11, "demo transcript").

The quick start does not put `.venv` on PATH, so a hint that says `relay247 node serve`
fails when pasted. Every printed follow-up names the program the user typed; here it is
typed as a path, in its own process, and the hint's first word must be that path.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_cli_relay import PASS, make_net
from tests.support.relay import free_port

# The console script of this installation, typed as a path (as after the quick start).
TYPED = str(Path(sys.executable).parent / "relay247")


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def typed(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TYPED, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": PASS, "PATH": "/usr/bin:/bin"},
        check=False,
    )


def hint(output: str, label: str) -> list[str]:
    line = next(ln for ln in output.splitlines() if ln.strip().startswith(label))
    return shlex.split(line.split(label, 1)[1])


def test_init_hints_name_the_typed_program(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    data = tmp_path / "my node"  # a space: the hint must quote it
    res = typed("node", "init", "--member", "FR", "--data", data, "--authority", "24/7 FR",
                "--languages", "en,fr", "--relay", "http://127.0.0.1:9",
                "--trust-root", net / "trust.json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert hint(res.stdout, "serve:") == [
        TYPED,
        "node",
        "serve",
        "--config",
        str(data / "node.toml"),
    ]

    port = free_port()
    res = typed("relay", "init", "--data", tmp_path / "relay", "--id", "r1", "--public-url",
                f"http://127.0.0.1:{port}", "--port", str(port),
                "--trust-root", net / "trust.json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    words = hint(res.stdout, "serve:")
    assert words[:3] == [TYPED, "relay", "serve"]


def test_publish_failure_names_the_typed_program(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    res = typed("network", "publish", "--dir", net, "--relay", down)
    assert res.returncode == 1, res.stderr
    assert f"`{TYPED} network push --dir {net} --relay {down}`" in res.stderr


def test_template_names_the_typed_program() -> None:
    res = typed("node", "template", "preservation")
    assert res.returncode == 0, res.stderr
    assert f"//   {TYPED} node new THIS_FILE" in res.stdout.splitlines()
