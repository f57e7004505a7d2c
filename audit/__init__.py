"""The auditor's tools: verify a relay's log, follow it, witness it, check evidence bundles.

Public surface for ``cli``: :func:`audit.verify.verify_log`, :func:`audit.monitor.monitor`,
:func:`audit.witness.witness_round` (one round of the standalone witness) and the client
:class:`audit._client.AuditClient` re-exported as :class:`AuditClient`.
"""

from audit._client import AuditClient

__all__ = ["AuditClient"]
