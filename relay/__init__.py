"""The relay: authenticated, durable, idempotent store-and-forward with an audit log.

The rooms, each importing only those before it (tests/unit/test_layering.py):

* :mod:`relay.storage`: the :class:`~relay.storage.Store` interface, its values and group
  commit, with the ``sqlite`` and ``postgres`` backends;
* ``relay._state`` and ``relay._directory``: what one running instance holds, the
  directory in force included;
* :mod:`relay.http`: authentication, the endpoints, WebSocket, middleware, metrics;
* :mod:`relay.audit`: the checkpointer and the /v1/audit/ routes;
* :mod:`relay.app` wires them; :mod:`relay.config`, :mod:`relay.keyfile` and
  :mod:`relay.backup` are what the CLI uses besides it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("relay247")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"
