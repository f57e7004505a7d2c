"""The demo's officers and consoles (issue 13 §4): one officer account per country, made
with ``relay247 node officer add`` before the nodes start, and each node's console URL
read from its ``console.port`` once it serves.

``--keep`` prints them with the password, the TOTP secret as an ``otpauth://`` URI, and
the ``relay247 node officer code`` command that prints the current code, so a reader
can log in to each console at once. The network is throwaway, so are the passwords.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cli._program import program

if TYPE_CHECKING:
    from cli._demo import Demo
    from cli._demo_text import Transcript

#: member -> (login, display name, console language)
OFFICERS: Final = {
    "FR": ("duty.fr", "Camille Durand", "fr"),
    "US": ("duty.us", "Jordan Lee", "en"),
    "DE": ("duty.de", "Lena Vogel", "en"),
}


@dataclass(frozen=True)
class Login:
    """One country's console and its officer's one-time credentials."""

    member: str
    url: str
    login: str
    password: str
    otpauth_uri: str
    secret: str


async def add_officers(demo: Demo, zones: dict[str, str]) -> dict[str, dict[str, str]]:
    """``relay247 node officer add`` for each country (officer and supervisor roles);
    returns the printed credentials by member."""

    async def add(member: str) -> tuple[str, dict[str, str]]:
        login, name, language = OFFICERS[member]
        args: list[str | Path] = [
            "node", "officer", "add", login, "--name", name, "--role", "officer",
            "--role", "supervisor", "--language", language, "--time-zone", zones[member],
            "--data", demo.data(member), "--json",
        ]  # fmt: skip
        out = await demo.run(args, show=member == "FR")
        return member, json.loads(out)

    found = await asyncio.gather(*(add(m) for m in OFFICERS))
    return dict(found)


async def logins(demo: Demo, creds: dict[str, dict[str, str]]) -> list[Login]:
    """Each country's console URL (``console.port``, written by ``node serve`` once its
    console listens: waited for) and login."""
    from cli._demo_procs import until

    out = []
    for member, data in creds.items():
        path = demo.data(member) / "console.port"

        async def written(path: Path = path) -> bool:
            return await asyncio.to_thread(_has_port, path)

        await until(written, f"{member}'s console to listen", demo.kids)
        port = path.read_text(encoding="ascii").strip()
        out.append(
            Login(
                member=member,
                url=f"http://127.0.0.1:{int(port)}",
                login=data["login"],
                password=data["password"],
                otpauth_uri=data["otpauth_uri"],
                secret=data["totp_secret"],
            )
        )
    return out


def _has_port(path: Path) -> bool:
    try:
        return path.read_text(encoding="ascii").strip().isdigit()
    except OSError:
        return False


def show(t: Transcript, found: list[Login]) -> None:
    """The consoles and logins, after ``--keep``: open the URL, log in with the password
    and the code the command prints (or an authenticator app given the otpauth URI)."""
    t.out.print("Officers' consoles (log in with the password and the current code):")
    for item in found:
        t.out.print(f"  {item.member}: {item.url}/login", markup=False, soft_wrap=True)
        t.out.print(f"    login: {item.login}", markup=False)
        t.out.print(f"    password: {item.password}", markup=False, soft_wrap=True)
        t.out.print(f"    TOTP: {item.otpauth_uri}", markup=False, soft_wrap=True)
        line = f"{program()} node officer code --secret {shlex.quote(item.secret)}"
        t.out.print(f"  $ {line}", markup=False, soft_wrap=True)
