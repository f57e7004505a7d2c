"""bench_peers, today's practice: e-mail with GnuPG, one ``gpg`` process per message.

As a mail client does it: the sender runs ``gpg --sign --encrypt`` for each message
(Ed25519 signature, Curve25519 encryption to the recipient's key), the recipient runs
``gpg --decrypt`` and checks the status lines for a good signature. Each side has its own
temporary GNUPGHOME holding its secret key and the other's public key; keys have no
passphrase (the ``gpg-agent`` each home starts does the private-key work). No mail
transport is timed: the figures are the cryptography and process start only, a floor
for the practice.

Measures, serial unless said: sign+encrypt per second (the "accepts" column),
decrypt+verify per second ("drain"), CPU per message of both (``gpg`` processes plus the
two agents), and a round trip (request out and back in, receipt out and back in: four
``gpg`` runs) for the end-to-end columns, p50 serial and the rate with two in flight.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._peers_common import Measures, cpu_seconds

_BATCH = ["--batch", "--yes", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]


def why_not() -> str | None:
    """None when ``gpg`` is installed; else the reason the row is skipped."""
    return None if shutil.which("gpg") else "gpg is not installed (Debian: apt-get install gnupg)"


class Party:
    """One mail user: a GNUPGHOME with an Ed25519 signing key and a Curve25519 subkey."""

    def __init__(self, home: Path, name: str) -> None:
        home.mkdir(mode=0o700)
        self.home = home
        uid = f"{name} <{name.lower()}@bench.invalid>"
        self.gpg("--quick-generate-key", uid, "ed25519", "sign", "never")
        listing = self.gpg("--with-colons", "--list-keys", uid).decode()
        self.fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
        self.gpg("--quick-add-key", self.fpr, "cv25519", "encr", "never")

    def gpg(self, *args: str, data: bytes = b"") -> bytes:
        """Run ``gpg`` in this home; return its standard output."""
        run = subprocess.run(
            ["gpg", "--homedir", str(self.home), *_BATCH, *args],
            input=data,
            capture_output=True,
            check=False,
        )
        if run.returncode != 0:
            raise SystemExit(f"gpg {args[0]} failed: {run.stderr.decode(errors='replace')}")
        return run.stdout

    def trust(self, other: Party) -> None:
        """Import ``other``'s public key."""
        self.gpg("--import", data=other.gpg("--export", other.fpr))

    def seal(self, to: Party, body: bytes) -> bytes:
        """Sign and encrypt ``body`` to ``to`` (one gpg process)."""
        return self.gpg(
            "--trust-model", "always", "--local-user", self.fpr, "--recipient", to.fpr,
            "--sign", "--encrypt", "--output", "-", data=body,
        )  # fmt: skip

    def open(self, frm: Party, data: bytes) -> bytes:
        """Decrypt and verify a message from ``frm`` (one gpg process)."""
        run = subprocess.run(
            ["gpg", "--homedir", str(self.home), *_BATCH, "--trust-model", "always",
             "--status-fd", "2", "--output", "-", "--decrypt"],
            input=data, capture_output=True, check=False,
        )  # fmt: skip
        status = run.stderr.decode(errors="replace")
        if run.returncode != 0 or f"VALIDSIG {frm.fpr}" not in status:
            raise SystemExit(f"gpg --decrypt did not verify: {status[-400:]}")
        return run.stdout

    def agent_pid(self) -> int | None:
        """The pid of this home's gpg-agent (it does the signing and decryption)."""
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if cmd and cmd[0].endswith(b"gpg-agent") and str(self.home).encode() in cmd:
                    return int(proc.name)
        return None

    def stop(self) -> None:
        """Stop this home's agent."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


def _cpu(parties: tuple[Party, Party]) -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    agents = sum(cpu_seconds(pid) for p in parties if (pid := p.agent_pid()) is not None)
    return children.ru_utime + children.ru_stime + agents


def measure(body: bytes, n: int) -> Measures:
    """The GnuPG row over ``n`` messages (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="relay247-bench-gpg-") as tmp:
        fr, us = Party(Path(tmp) / "fr", "FR"), Party(Path(tmp) / "us", "US")
        try:
            fr.trust(us)
            us.trust(fr)
            us.open(fr, fr.seal(us, body))  # warm-up: both agents running

            cpu0, t0 = _cpu((fr, us)), time.perf_counter()
            sealed = [fr.seal(us, body) for _ in range(n)]
            t1 = time.perf_counter()
            for data in sealed:
                if us.open(fr, data) != body:
                    raise SystemExit("gpg: the decrypted body differs")
            t2, cpu = time.perf_counter(), _cpu((fr, us)) - cpu0

            def trip() -> float:
                start = time.perf_counter()
                receipt = us.seal(fr, b"receipt for " + us.open(fr, fr.seal(us, body))[:32])
                fr.open(us, receipt)
                return time.perf_counter() - start

            latencies = sorted(trip() for _ in range(n))
            start = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda _: trip(), range(n)))
            rate = n / (time.perf_counter() - start)
        finally:
            fr.stop()
            us.stop()
    return Measures(
        accepts=n / (t1 - t0),
        cpu_us=cpu / n * 1e6,
        drain=n / (t2 - t1),
        e2e_p50_ms=latencies[len(latencies) // 2] * 1e3,
        e2e_rate=rate,
    )


if __name__ == "__main__":  # a quick look at the row alone
    print(why_not() or measure(os.urandom(2048), 10))
