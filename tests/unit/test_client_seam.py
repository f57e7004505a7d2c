"""Every request to a relay goes through ``client`` (issue 12 item 1, "One relay client").

The layering test says who may import whom; this one keeps the relay's users from
growing their own HTTP calls to it again: the auditor and the relay-facing CLI commands
import no aiohttp, and RFC 9421 request signing (``protocol.httpsig.sign_request``) has
one caller in product code, the member client.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("schemas", "protocol", "client", "serving", "relay", "node", "audit", "cli")


def _imported(path: Path) -> set[str]:
    """Module names and ``module.name`` for every import in ``path``."""
    names: set[str] = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import):
            names.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            names.add(n.module)
            names.update(f"{n.module}.{a.name}" for a in n.names)
    return names


def _relay_users() -> list[Path]:
    cli = ROOT / "cli"
    return [
        *sorted((ROOT / "audit").rglob("*.py")),
        *sorted(cli.glob("_network*.py")),
        cli / "_audit.py",
    ]


def test_the_relays_users_make_no_http_calls_of_their_own() -> None:
    users = _relay_users()
    assert len(users) > 8  # the globs found the files (a moved folder fails here)
    bad = [
        str(p.relative_to(ROOT))
        for p in users
        if any(m == "aiohttp" or m.startswith("aiohttp.") for m in _imported(p))
    ]
    assert bad == [], f"call the relay through client.PublicClient / RelayClient: {bad}"


def test_request_signing_happens_in_the_member_client_only() -> None:
    signers = sorted(
        str(p.relative_to(ROOT))
        for package in PRODUCT
        for p in (ROOT / package).rglob("*.py")
        if "protocol.httpsig.sign_request" in _imported(p)
    )
    assert signers == ["client/_member.py"]
