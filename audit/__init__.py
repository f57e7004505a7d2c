"""The auditor's tools: verify a relay's log, follow it, witness it, check evidence bundles.

Public surface for ``cli``: :func:`audit.verify.verify_log`, :func:`audit.monitor.monitor`
and :func:`audit.witness.witness_round` (one round of the standalone witness). They read
the relay through :class:`client.PublicClient` (the witness posts through a member's
:class:`client.RelayClient`).
"""
