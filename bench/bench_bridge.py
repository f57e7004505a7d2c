"""The e-mail bridge's round trip on loopback, time per stage (issue 18 §2, PROTOCOL.md §22).

A real SMTP server (aiosmtpd, STARTTLS) delivers into a Maildir that Dovecot serves by
IMAP (STARTTLS); GnuPG plays the e-mail-only member. One round: the node renders, signs
and encrypts a preservation request (O1-O4) and submits it (O5); the member's GnuPG
decrypts it and signs+encrypts a structured reply, submitted by SMTP; the node, waiting
in IMAP IDLE, is woken, fetches it (M1) and verifies and decodes it (M2-M7).

Printed per stage: wall p50 / p90 and CPU per operation (this process and its children:
the forked M4 decryption, GnuPG), each beside a
limit measured in the same run: pysequoia's bare encrypt (sign+encrypt) and decrypt
(decrypt+verify) of the same bytes, and a bare SMTP submission of a 100-byte message
over the same STARTTLS connection setup. Needs root, Dovecot and GnuPG (.ci/run
installs them). Run: ``.venv/bin/python -m bench.bench_bridge [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import smtplib
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from importlib.metadata import version
from typing import TypeVar

import msgspec

from node.email_bridge import (
    Mailbox,
    NodeOpenPgpKey,
    accept,
    armored_payload,
    build,
    load_cert,
    submit,
)
from schemas.directory import EmailReach, KeyAlg, KeyUse, Member, MemberKey
from schemas.examples import EXAMPLES
from tests.support.mailserver import GpgMember, gpg_member, mail_available, start_mail, stop_mail

T = TypeVar("T")
NOW = datetime(2026, 5, 11, 8, 0, tzinfo=UTC)
NODE, NODE_ADDRESS, MEMBER_ADDRESS = "FR-OCLCTIC", "fr-247@node.test", "de-247@bka.test"


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the M4 decryption child,
    the member's GnuPG)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall seconds and the CPU seconds of this process and its children."""
    wall, cpu = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - wall, _cpu() - cpu


def member_entry(gpg: GpgMember) -> Member:
    key = MemberKey(
        use=KeyUse.SIGNING,
        alg=KeyAlg.ED25519,
        public=bytes(32),
        not_before=NOW,
        not_after=NOW.replace(year=2030),
    )
    return Member(
        id="DE-BKA",
        authority="BKA SO4",
        languages=("fr",),
        time_zone="Europe/Berlin",
        keys=(key,),
        email_bridge=EmailReach(address=gpg.address, openpgp_cert=gpg.armored_cert()),
    )


def member_reply(gpg: GpgMember, node_fpr: str, raw_request: bytes) -> bytes:
    """What the member's client does: decrypt, verify, answer with a filled-in body."""
    _, status = gpg.decrypt(armored_payload(raw_request))
    assert "VALIDSIG" in status, status
    inner = EmailMessage()
    inner.set_content("Preserved.", charset="utf-8")
    inner.add_attachment(
        msgspec.json.encode(EXAMPLES["preserved"]),
        maintype="application",
        subtype="json",
        filename="relay247-body.json",
    )
    armored = gpg.sign_encrypt(inner.as_bytes(policy=SMTP_POLICY), node_fpr)
    reply = EmailMessage()
    reply["From"], reply["To"], reply["Subject"] = gpg.address, NODE_ADDRESS, "Re: relay247"
    reply.set_type("multipart/encrypted")
    reply.set_param("protocol", "application/pgp-encrypted")
    control, data = EmailMessage(), EmailMessage()
    control.set_content(
        b"Version: 1\r\n", maintype="application", subtype="pgp-encrypted", cte="7bit"
    )
    data.set_content(armored, maintype="application", subtype="octet-stream", cte="7bit")
    reply.attach(control)
    reply.attach(data)
    return reply.as_bytes(policy=SMTP_POLICY)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    why = mail_available()
    if why:
        raise SystemExit(f"bench_bridge: {why}")
    mail = start_mail()
    gen = gpg_member(MEMBER_ADDRESS)
    gpg = next(gen)
    try:
        node_key = NodeOpenPgpKey.generate(f"FR 24/7 <{NODE_ADDRESS}>")
        gpg.import_cert(node_key.armored_cert())
        member = member_entry(gpg)
        cert = load_cert(gpg.armored_cert())
        case = EXAMPLES["preserved"].case_id
        box = Mailbox(
            "127.0.0.1", mail.imap_port, tls="starttls", context=mail.context, login=mail.login
        )
        stages: dict[str, list[tuple[float, float]]] = {
            k: []
            for k in (
                "build",
                "bare_encrypt",
                "submit",
                "bare_submit",
                "member",
                "arrival",
                "accept",
                "bare_decrypt",
                "round",
            )
        }
        body = EXAMPLES["preservation_extension"]
        smtp_kw = {
            "host": "127.0.0.1",
            "port": mail.smtp_port,
            "tls": "starttls",
            "sender": NODE_ADDRESS,
            "context": mail.context,
        }

        def one_round() -> None:
            start = time.perf_counter()
            out, w, c = timed(
                lambda: build(
                    body, member=member, node_key=node_key, sender_address=NODE_ADDRESS, now=NOW
                )
            )
            stages["build"].append((w, c))
            inner = msgspec.json.encode(body) * 3  # about the inner entity's size
            _, w, c = timed(lambda: node_key.sign_and_encrypt(inner, cert))
            stages["bare_encrypt"].append((w, c))
            _, w, c = timed(lambda: submit(out, **smtp_kw))  # type: ignore[arg-type]
            stages["submit"].append((w, c))

            def bare() -> None:
                with smtplib.SMTP("127.0.0.1", mail.smtp_port) as s:
                    s.starttls(context=mail.context)
                    s.sendmail(NODE_ADDRESS, ["sink@node.test"], b"Subject: x\r\n\r\n" + b"x" * 86)

            _, w, c = timed(bare)
            stages["bare_submit"].append((w, c))
            for uid in box.unseen():  # the node's own and the sink messages: the member's box
                box.fetch(uid)
            reply, w, c = timed(lambda: member_reply(gpg, node_key.fingerprint, out.raw))
            stages["member"].append((w, c))

            def send_reply() -> None:
                with smtplib.SMTP("127.0.0.1", mail.smtp_port) as s:
                    s.starttls(context=mail.context)
                    s.sendmail(gpg.address, [NODE_ADDRESS], reply)

            sent_at = [0.0]

            def later() -> None:
                sent_at[0] = time.perf_counter()
                send_reply()

            thread = threading.Timer(0.05, later)
            cpu0 = _cpu()
            thread.start()
            fetched: list[bytes] = []
            deadline = time.perf_counter() + 10
            woke = False
            while not fetched and time.perf_counter() < deadline:
                woke = box.idle(max(0.1, deadline - time.perf_counter())) or woke
                # The node's request and the bare submission share this one test mailbox.
                fetched = [
                    raw
                    for uid in box.unseen()
                    if (raw := box.fetch(uid)) is not None
                    and raw.startswith(b"From: " + gpg.address.encode())
                ]
            thread.join()
            stages["arrival"].append((time.perf_counter() - sent_at[0], _cpu() - cpu0))
            assert woke, "IDLE never woke"
            assert len(fetched) == 1, len(fetched)
            got, w, c = timed(
                lambda: accept(
                    fetched[0],
                    members=[member],
                    node_member=NODE,
                    node_key=node_key,
                    case_peer={case: "DE-BKA"}.get,
                )
            )
            assert got.body == EXAMPLES["preserved"]
            stages["accept"].append((w, c))
            data = armored_payload(fetched[0])
            _, w, c = timed(lambda: node_key._open(data, cert))
            stages["bare_decrypt"].append((w, c))
            stages["round"].append((time.perf_counter() - start, 0.0))

        for _ in range(rounds):
            one_round()
        box.close()
    finally:
        next(gen, None)
        stop_mail(mail)
    load = os.getloadavg()
    print(
        f"bench_bridge: {rounds} rounds, load average {load[0]:.1f} / {load[1]:.1f}, "
        f"pysequoia {version('pysequoia')}"
    )
    print(f"{'stage':34} {'wall p50':>9} {'p90':>9} {'cpu/op':>9}  ratio to limit (p50 wall, cpu)")
    limits = {"build": "bare_encrypt", "submit": "bare_submit", "accept": "bare_decrypt"}
    names = {
        "build": "O1-O4 render + sign + encrypt",
        "bare_encrypt": "  limit: bare pysequoia encrypt",
        "submit": "O5 SMTP submit (STARTTLS)",
        "bare_submit": "  limit: bare 100-byte submit",
        "member": "member (GnuPG) decrypt + reply",
        "arrival": "IMAP arrival: sent -> IDLE -> fetched",
        "accept": "M1-M7 verify (forked M4) + decode",
        "bare_decrypt": "  limit: bare decrypt, in-process",
        "round": "whole round (request -> accepted)",
    }
    for key, label in names.items():
        walls = [w for w, _ in stages[key]]
        cpus = [c for _, c in stages[key]]
        p50, p90, cpu = statistics.median(walls), pct(walls, 0.9), statistics.mean(cpus)
        ratio = ""
        if key in limits:
            lim = stages[limits[key]]
            lw = statistics.median([w for w, _ in lim])
            lc = statistics.mean([c for _, c in lim])
            ratio = f"{p50 / lw:.2f}x, {cpu / lc:.2f}x" if lw and lc else ""
        print(f"{label:34} {p50 * 1e3:8.1f}ms {p90 * 1e3:8.1f}ms {cpu * 1e3:8.2f}ms  {ratio}")


if __name__ == "__main__":
    main()
