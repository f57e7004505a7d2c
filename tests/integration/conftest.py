"""Fixtures shared by the integration suites: the storage backend a test runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import Backend, set_default_backend


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=requires_pg)])
async def relay_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Run the test once on SQLite and once on PostgreSQL (each schema dropped after).

    Also the default backend of ``running_relay`` while the test runs, so a module
    parametrises every relay it starts with ``pytestmark = usefixtures("relay_backend")``.
    """
    backend = Backend(request.param, tmp_path)
    previous = set_default_backend(backend)
    try:
        yield backend
    finally:
        set_default_backend(previous)
        for schema in backend.schemas:
            await drop_schema(schema)
