"""The console's WebAuthn relying party and challenges (console/_keys.py, PROTOCOL.md
§14.5): the RP ID is a domain (never an IP address), localhost on loopback; configured
values a browser would refuse stop the start; a challenge is used once, in its session,
for its subject, within its lifetime; memory stays bounded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console import _keys
from console._keys import LIFETIME, Ceremonies, KeysConfig, check
from node.officers import RelyingParty
from protocol.errors import ConfigError


@pytest.mark.parametrize(
    ("host", "tls", "port", "expected"),
    [
        ("127.0.0.1", False, 8080, RelyingParty("localhost", "http://localhost:8080")),
        ("::1", True, 443, RelyingParty("localhost", "https://localhost")),
        ("localhost", False, 80, RelyingParty("localhost", "http://localhost")),
        ("desk.police.example", True, 8443, RelyingParty(
            "desk.police.example", "https://desk.police.example:8443")),
        ("desk.police.example", False, 8080, None),  # no secure context off localhost
        ("10.0.0.5", True, 8443, None),  # an IP address is no RP ID
        ("0.0.0.0", False, 8080, None),  # the listener's address, as configured
    ],
)  # fmt: skip
def test_derived_relying_party(
    host: str, tls: bool, port: int, expected: RelyingParty | None
) -> None:
    config = KeysConfig(host, "", "", tls=tls)
    assert config.relying_party() is None  # not before the port is known
    config.port = port
    assert config.relying_party() == expected


def test_configured_relying_party() -> None:
    office = KeysConfig("10.0.0.5", "police.example", "https://desk.police.example", tls=True)
    office.port = 8443
    assert office.relying_party() == RelyingParty("police.example", "https://desk.police.example")
    behind_proxy = KeysConfig("127.0.0.1", "", "https://desk.police.example", tls=False)
    assert behind_proxy.relying_party() == RelyingParty(
        "desk.police.example", "https://desk.police.example"
    )
    named = KeysConfig("10.0.0.5", "desk.police.example", "", tls=True)
    named.port = 8443
    assert named.relying_party() == RelyingParty(
        "desk.police.example", "https://desk.police.example:8443"
    )


@pytest.mark.parametrize(
    ("rp_id", "origin"),
    [
        ("police.example", "https://desk.police.example"),
        ("localhost", "http://localhost:8080"),
        ("", "https://desk.police.example:8443"),
        ("", ""),
    ],
)
def test_accepted_configuration(rp_id: str, origin: str) -> None:
    check(rp_id, origin)


@pytest.mark.parametrize(
    ("rp_id", "origin"),
    [
        ("127.0.0.1", ""),  # an IP address
        ("10.1", ""),
        ("Police.Example", ""),  # browsers compare the lower-case form
        ("police..example", ""),
        ("pol\u0663ice.example", ""),
        ("police.example", "http://desk.police.example"),  # not a secure context
        ("police.example", "https://desk.police.example/console"),  # a path
        ("police.example", "https://evil.example"),  # not on the RP ID
        ("police.example", "https://notpolice.example"),
        ("police.example", "https://user@desk.police.example"),
        ("police.example", "https://desk.police.example:99999"),
        ("police.example", " https://desk.police.example"),
        ("", "https://10.0.0.5"),  # an IP origin can never have an RP ID
        ("", "ftp://desk.police.example"),
    ],
)
def test_refused_configuration(rp_id: str, origin: str) -> None:
    with pytest.raises(ConfigError):
        check(rp_id, origin)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_challenge_is_used_once_in_its_session_for_its_subject() -> None:
    clock = Clock()
    c = Ceremonies(clock)
    first = c.start("s1", "login", "duty")
    assert len(first) == 32
    assert c.take("s1", "login", "duty") == first
    assert c.take("s1", "login", "duty") is None  # used
    c.start("s1", "login", "duty")
    assert c.take("s2", "login", "duty") is None  # another session
    assert c.take("s1", "register", "duty") is None  # another purpose
    assert c.take("s1", "login", "agent") is None  # another subject: and it is gone
    assert c.take("s1", "login", "duty") is None
    old = c.start("s1", "login", "duty")
    new = c.start("s1", "login", "duty")  # a second press replaces the first
    assert old != new
    assert c.take("s1", "login", "duty") == new
    c.start("s1", "register", "blue key")
    clock.now += LIFETIME
    assert c.take("s1", "register", "blue key") is None  # expired


def test_ceremonies_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_keys, "MAX_PENDING", 5)
    clock = Clock()
    c = Ceremonies(clock)
    for i in range(5):
        c.start(f"s{i}", "login", "duty")
    clock.now += timedelta(seconds=1)
    c.start("s5", "login", "duty")  # full: the oldest goes
    assert c.take("s0", "login", "duty") is None
    assert c.take("s5", "login", "duty") is not None
    assert len(c._live) == 4


async def test_node_serve_refuses_an_rp_id_no_browser_accepts() -> None:
    from types import SimpleNamespace
    from typing import cast

    from console._server import attach
    from node.config import ConsoleSection
    from node.daemon import Node

    for section in (ConsoleSection(rp_id="10.0.0.5"), ConsoleSection(origin="http://desk.example")):
        node = cast(Node, SimpleNamespace(config=SimpleNamespace(console=section)))
        with pytest.raises(ConfigError, match=r"console: (rp_id|origin)"):
            await attach(node)  # before any file or port is touched
