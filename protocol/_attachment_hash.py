"""The two SHA-256 of an attachment (§15.1 item 5), computed beside its encryption.

Encrypting or decrypting an attachment costs one secretstream pass and two SHA-256
passes (plaintext and ciphertext); on one thread the hashes took more than the
encryption itself (bench/bench_attach_relay.py, issue 14's throughput target). Both
libsodium (through cffi) and hashlib release the GIL for large buffers, so
:class:`PairHash` feeds each batch's two hashes to a worker thread of its own while the
caller encrypts or decrypts the next batch: on two cores the passes overlap. The two
hashes of a batch run at the same time, each in a thread: one thread doing both was the
slowest stage of a download's check (0.6 s of SHA-256 against 0.2 s of decryption for
256 MiB, bench/bench_attach_relay.py).

Order is kept (a batch's hashes start only once the previous batch's ended), and at most
one batch is being hashed while the caller works on the next (the memory bound: two
batches). Batches
under :data:`THREAD_FROM` bytes while no worker runs are hashed at once on the caller's
thread: a small attachment never starts a thread.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

#: bytes of one batch from which the hashing moves to a worker thread
THREAD_FROM: Final = 256 << 10


class PairHash:
    """SHA-256 of the plaintext and of the ciphertext, fed batch by batch, in order.

    ``cipher`` False: the plaintext's only (the ciphertext's digest is then ``""``).
    """

    def __init__(self, *, cipher: bool = True) -> None:
        self.plain = hashlib.sha256()
        self.cipher = hashlib.sha256() if cipher else None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[None], ...] = ()
        self._closed = False

    def _apply(self, plain: bytes, cipher: bytes) -> None:
        self.plain.update(plain)
        if self.cipher is not None:
            self.cipher.update(cipher)

    def update(self, plain: bytes, cipher: bytes) -> None:
        """Add ``plain`` to the plaintext's hash and ``cipher`` to the ciphertext's.

        The buffers must not change afterwards (``bytes``: they cannot).

        Raises:
            ValueError: after :meth:`close` (a late batch would start a worker that
                nothing stops).
        """
        if self._closed:
            raise ValueError("attachment hashes already closed")
        if self._pool is None:
            if len(plain) + (0 if self.cipher is None else len(cipher)) < THREAD_FROM:
                self._apply(plain, cipher)
                return
            self._pool = ThreadPoolExecutor(2, thread_name_prefix="attachment-hash")
        self.wait()
        self._pending = (self._pool.submit(self.plain.update, plain),)
        if self.cipher is not None:
            self._pending += (self._pool.submit(self.cipher.update, cipher),)

    def wait(self) -> None:
        """Return once every batch given so far is hashed (re-raising a failure)."""
        pending, self._pending = self._pending, ()
        for future in pending:
            future.result()

    def hexdigests(self) -> tuple[str, str]:
        """``(plaintext SHA-256, ciphertext SHA-256)``, hex, of everything given."""
        self.close()
        return self.plain.hexdigest(), "" if self.cipher is None else self.cipher.hexdigest()

    def close(self) -> None:
        """Wait for the hashing under way and stop the workers (idempotent); later
        batches are refused."""
        self._closed = True
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
