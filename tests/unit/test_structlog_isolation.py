"""tests/conftest.py: a test that configures structlog as the CLI does leaves no cached
logger behind that a later test's capture_logs would miss (two tests, in file order)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from cli._logging import configure

#: a module-level logger, as product modules keep one
log = structlog.get_logger("relay247.test_isolation")


def test_the_cli_configuration_is_used_by_module_loggers() -> None:
    configure(level="info", fmt="json")  # caching on, as in the CLI
    log.info("first use", n=1)  # would cache the logger with this configuration's list
    structlog.configure(processors=[structlog.processors.JSONRenderer()])  # a new list


def test_a_later_capture_sees_the_module_logger() -> None:
    with capture_logs() as logs:
        log.warning("seen", n=2)
    assert [e["event"] for e in logs] == ["seen"]
