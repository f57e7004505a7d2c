"""A node-side store (``NodeStore``, ``CaseStore``) opened for the length of a ``with``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar


class _Openable(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=_Openable)


@asynccontextmanager
async def opened(store: S) -> AsyncIterator[S]:
    """``store`` opened, and closed again however the ``with`` ends."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()
