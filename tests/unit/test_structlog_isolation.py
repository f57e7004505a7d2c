"""tests/conftest.py: a test that configures structlog as the CLI does leaves no cached
logger behind that a later capture_logs would miss (the fixture is autouse: this test,
like every other, runs inside it; without it the capture below sees nothing)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from cli._logging import configure


def test_a_capture_after_the_cli_configuration_sees_a_module_logger() -> None:
    log = structlog.get_logger("relay247.test_isolation")  # as a product module keeps one
    configure(level="info", fmt="json")  # caching on, as in the CLI
    log.info("first use", n=1)  # would cache the logger with this configuration's list
    structlog.configure(processors=[structlog.processors.JSONRenderer()])  # a new list
    with capture_logs() as logs:
        log.warning("seen", n=2)
    assert [e["event"] for e in logs] == ["seen"]
