"""deploy/prometheus/alerts.yml uses only metric names (and labels) a real relay serves."""

from __future__ import annotations

import re
import time
from pathlib import Path

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from protocol.cosignature import CosignatureSigner, cosign
from relay.audit._checkpointer import tick
from schemas.audit_api import CosignatureSubmission
from tests.support.relay import RunningRelay, envelope, fetch, post_signed, running_relay, signed
from tests.unit.test_deploy import alert_rules, metric_names

#: series Prometheus makes itself (scrape health), not served by the relay
PROMETHEUS_OWN = {"up"}


async def _exercise(relay: RunningRelay) -> None:
    """Make every labelled series exist: accept, deliver, reject, checkpoint, cosign."""
    fr, us = relay.client("FR"), relay.client("US")
    await fr.submit(envelope(relay.net, "FR", "US"))
    await fr.submit(envelope(relay.net, "FR", "DE"))
    assert (await us.mailbox()).messages
    bad = await post_signed(relay, "FR", "/v1/envelopes", b"{}")
    assert bad.status == 400
    cp = await signed(relay)
    text = cp.note[: cp.note.index(b"\n\n") + 1].decode()
    line = cosign(text, CosignatureSigner("FR", relay.net.members["FR"].signing), int(time.time()))
    body = msgspec.json.encode(CosignatureSubmission(checkpoint=cp.note.decode(), cosignature=line))
    assert (await post_signed(relay, "FR", "/v1/audit/cosignature", body)).status == 200
    # One background round, run here so nothing depends on timing: leader gauge,
    # expiry sweep, mailbox depths, log size.
    await tick(relay.state)


def _served(exposition: str) -> dict[str, set[str]]:
    """Sample name -> label names, from the Prometheus text format."""
    served: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            served.setdefault(sample.name, set()).update(sample.labels)
    return served


#: labels Prometheus attaches to every scraped series (not served by the relay)
TARGET_LABELS = frozenset({"instance", "job"})


async def test_every_alert_metric_is_served_by_a_relay(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await _exercise(relay)
        answer = await fetch(relay, "/metrics")
    assert answer.status == 200
    served = _served(answer.body.decode())
    assert "relay247_accepted_total" in served  # the parser and exercise worked
    for rule in alert_rules():
        expr = rule["expr"]
        for name in metric_names(expr) - PROMETHEUS_OWN:
            assert name in served, f"{rule['alert']}: {name} is not served at /metrics"
        # A rule that groups `by (label)` needs that label on the series it groups;
        # Prometheus itself adds the target labels `instance` and `job` at scrape time.
        for label, name in re.findall(r"by \((\w+)\) \((?:\w+\()?(relay247_\w+)", expr):
            if label in TARGET_LABELS:
                continue
            assert label in served[name], f"{rule['alert']}: {name} has no label {label}"


def test_metric_names_sees_every_series() -> None:
    # The extractor the test above relies on: a misspelt name must be caught.
    assert metric_names('max by (x) (deriv(relay247_mailbox_dept{job="a"}[5m])) > 0') == {
        "relay247_mailbox_dept"
    }
    assert metric_names('up{job="relay247"} == 0') == {"up"}
