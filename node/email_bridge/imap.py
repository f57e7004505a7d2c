"""Fetching replies by IMAP (RFC 9051 / RFC 3501) over TLS, waiting with IDLE (RFC 2177).

The standard library's blocking ``imaplib`` (run it in a thread); Python 3.11's
``imaplib`` has no IDLE, so :meth:`Mailbox.idle` speaks its three lines itself.
Every fetched message is bounded (M1) before its bytes are read.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import select
import socket
import ssl
from typing import Final, Literal

from node.email_bridge.inbound import MAX_EMAIL

_SIZE_RE: Final = re.compile(rb"RFC822\.SIZE (\d{1,12})", re.ASCII)


class Mailbox:
    """One IMAP session on the bridge's mailbox (``INBOX``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: Literal["starttls", "implicit"],
        context: ssl.SSLContext,
        login: tuple[str, str],
        timeout: float = 30.0,
    ) -> None:
        if tls == "implicit":
            self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                host, port, ssl_context=context, timeout=timeout
            )
        else:
            self._imap = imaplib.IMAP4(host, port, timeout=timeout)
        try:
            if tls == "starttls":
                self._imap.starttls(ssl_context=context)  # never logs in in clear
            self._imap.login(*login)
            self._imap.select("INBOX")
        except BaseException:  # a refused login or TLS: the connection is closed, not leaked
            with contextlib.suppress(OSError):
                self._imap.shutdown()
            raise

    def close(self) -> None:
        """Log out (best effort); the connection is closed either way."""
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self._imap.logout()  # closes it, when the server answers
            return
        with contextlib.suppress(OSError):
            self._imap.shutdown()

    def unseen(self) -> list[str]:
        """The UIDs of messages not yet handled."""
        typ, data = self._imap.uid("SEARCH", "UNSEEN")
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            return []
        return [uid.decode("ascii") for uid in data[0].split() if uid.isdigit()]

    def fetch(self, uid: str) -> bytes | None:
        """The exact bytes of one message, or ``None`` when it is over M1's bound.

        Leaves it unseen (``BODY.PEEK``): the caller marks it seen with :meth:`mark_seen`
        once it is recorded or refused, so a node stopped or failing in between fetches
        it again (recording is idempotent by the e-mail's hash).
        """
        typ, data = self._imap.uid("FETCH", uid, "(RFC822.SIZE)")
        found = _SIZE_RE.search(data[0] if data and isinstance(data[0], bytes) else b"")
        if typ != "OK" or found is None:  # the server's failure, not the message's
            raise imaplib.IMAP4.error(f"FETCH of the size of {uid} failed")
        if int(found.group(1)) > MAX_EMAIL:
            return None
        typ, data = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
        for item in data or [] if typ == "OK" else []:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1][: MAX_EMAIL + 1]
        raise imaplib.IMAP4.error(f"FETCH of {uid} failed")

    def mark_seen(self, uid: str) -> None:
        """Flag one message handled (recorded, or refused with its alert raised)."""
        self._imap.uid("STORE", uid, "+FLAGS", r"(\Seen)")

    def abort(self) -> None:
        """Shut the connection down now, from any thread: a waiting :meth:`idle` returns
        (the node stopping); the session is unusable afterwards."""
        with contextlib.suppress(OSError):
            self._imap.socket().shutdown(socket.SHUT_RDWR)

    def idle(self, seconds: float) -> bool:
        """RFC 2177 IDLE: wait up to ``seconds`` for new mail; True when some arrived.

        The wait is a ``select`` on the socket, not a read timeout: a timed-out read
        leaves the stream unusable (``socket.SocketIO``), and IDLE must be ended with
        DONE and its tagged answer read on the same stream.
        """
        imap = self._imap
        tag = imap._new_tag()
        imap.send(tag + b" IDLE\r\n")
        if not imap.readline().startswith(b"+"):
            return False
        sock = imap.socket()
        buffered = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        arrived = False
        if buffered or select.select([sock], [], [], seconds)[0]:
            line = imap.readline()
            arrived = b"EXISTS" in line or b"RECENT" in line
        imap.send(b"DONE\r\n")
        while True:  # the tagged end of IDLE, after any untagged lines
            line = imap.readline()
            if not line or line.startswith(tag):
                break
            arrived = arrived or b"EXISTS" in line
        return arrived
