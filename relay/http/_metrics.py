"""Prometheus metrics of one relay instance (a registry per app, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The counters, gauges and histograms served at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter("relay247_accepted", "Envelopes accepted (202)", registry=r)
        self.duplicates = Counter(
            "relay247_duplicate_submissions", "Idempotent resubmissions answered", registry=r
        )
        self.rejected = Counter(
            "relay247_rejected", "Requests rejected, by error code", ["code"], registry=r
        )
        self.delivered = Counter(
            "relay247_delivered",
            "Envelopes handed to recipients (push or pull)",
            ["via"],
            registry=r,
        )
        self.acked = Counter("relay247_acked", "Delivery acks logged", registry=r)
        self.email_records = Counter(
            "relay247_email_records", "E-mail records of the OpenPGP bridge logged", registry=r
        )
        self.mailbox_depth = Gauge(
            "relay247_mailbox_depth",
            "Undelivered envelopes, by recipient",
            ["recipient"],
            registry=r,
        )
        self.ws_connections = Gauge(
            "relay247_ws_connections", "Open WebSocket mailbox connections", registry=r
        )
        self.log_size = Gauge("relay247_log_size", "Audit log size (leaves)", registry=r)
        self.leader = Gauge(
            "relay247_leader", "1 while this instance sequences the log and signs", registry=r
        )
        self.checkpoint_size = Gauge(
            "relay247_checkpoint_size", "Size of the latest checkpoint served", registry=r
        )
        self.checkpoint_timestamp = Gauge(
            "relay247_checkpoint_timestamp_seconds",
            "Unix time the served checkpoint was signed (or first seen by a follower)",
            registry=r,
        )
        self.checkpoint_cosignatures = Gauge(
            "relay247_checkpoint_cosignatures",
            "Witness cosignatures stored for the served checkpoint",
            registry=r,
        )
        self.member_last_seen = Gauge(
            "relay247_member_last_seen_timestamp_seconds",
            "Unix time of the member's last authenticated request to this instance",
            ["member"],
            registry=r,
        )
        self.connections_refused = Counter(
            "relay247_connections_refused",
            "Connections refused over a cap or cut for a stalled request head, by reason",
            ["reason"],
            registry=r,
        )
        for reason in ("max_connections", "max_per_address", "header_timeout"):
            self.connections_refused.labels(reason)  # served at 0 from the start
        self.expired = Counter(
            "relay247_expired", "Envelopes dropped undelivered by the expiry sweep", registry=r
        )
        self.accept_latency = Histogram(
            "relay247_accept_seconds",
            "Submission latency from request to durable 202",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.storage_healthy = Gauge(
            "relay247_storage_healthy",
            "0 while a storage outage lasts (disk full, read-only, I/O error, no database)",
            registry=r,
        )
        self.storage_healthy.set(1)
        self.storage_failures = Counter(
            "relay247_storage_failures",
            "Storage operations failed by an outage (each answered 503)",
            registry=r,
        )
        self._failures_seen = 0
        self.request_latency = Histogram(
            "relay247_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        # Labelled children bound once: ``labels()`` takes a lock and builds a key on
        # every call, which is measurable on the accept path (issue 3, "Benchmark").
        self._route_latency: dict[str, Histogram] = {}
        self._depth: dict[str, Gauge] = {}
        self._rejected: dict[str, Counter] = {}
        self._seen: dict[str, Gauge] = {}

    def route_latency(self, route: str) -> Histogram:
        """The ``request_latency`` child of ``route`` (bound on first use)."""
        child = self._route_latency.get(route)
        if child is None:
            child = self._route_latency[route] = self.request_latency.labels(route)
        return child

    def depth(self, recipient: str) -> Gauge:
        """The ``mailbox_depth`` child of ``recipient`` (bound on first use)."""
        child = self._depth.get(recipient)
        if child is None:
            child = self._depth[recipient] = self.mailbox_depth.labels(recipient)
        return child

    def rejections(self, code: str) -> Counter:
        """The ``rejected`` child of error ``code`` (bound on first use)."""
        child = self._rejected.get(code)
        if child is None:
            child = self._rejected[code] = self.rejected.labels(code)
        return child

    def seen(self, member: str) -> Gauge:
        """The ``member_last_seen`` child of ``member`` (bound on first use)."""
        child = self._seen.get(member)
        if child is None:
            child = self._seen[member] = self.member_last_seen.labels(member)
        return child

    def storage_sync(self, healthy: bool, failures: int) -> None:
        """Copy the store's health (relay/storage/_health.py) into the two storage metrics."""
        self.storage_healthy.set(1 if healthy else 0)
        if failures > self._failures_seen:
            self.storage_failures.inc(failures - self._failures_seen)
            self._failures_seen = failures

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
