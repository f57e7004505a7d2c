"""Fixtures for the whole suite: structlog's configuration does not leak between tests.

The CLI configures structlog once per process with ``cache_logger_on_first_use`` (STYLE.md
rule 14), which is right for a process but not for a test run: a module logger first used
under that configuration keeps the processor list of that moment for good, so a later
test's ``structlog.testing.capture_logs`` (which edits the current list in place) never
sees its events. Here every ``structlog.configure`` call made while a test runs has caching
turned off, and the configuration in place before the test is put back after it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

# In-process nodes and relays log with structlog's default PrintLogger, which writes to
# sys.stdout as it is at each call. While a test runs a CLI command through click's
# CliRunner (in a thread, beside a node's event loop), sys.stdout is that command's
# captured output: a node's "message sent" landed inside the JSON a test parsed
# (test_emergency_show, about 1 run in 6 on a loaded machine). Logs go to the session's
# stderr as it was when this file was loaded, whatever a CliRunner swaps meanwhile.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))


@pytest.fixture(autouse=True)
def _structlog_per_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = structlog.get_config()
    saved["processors"] = list(saved["processors"])
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        settings["cache_logger_on_first_use"] = False
        configure(**settings)

    monkeypatch.setattr(structlog, "configure", uncached)
    yield
    structlog.reset_defaults()
    configure(**saved)
