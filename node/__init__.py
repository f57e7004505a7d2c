"""A country's node: keystore, outbox/inbox, receipts, cases and the relay client.

One room per concern; each room's ``__init__`` is its public face (lazy, so importing
one name does not load the room): ``node.messaging`` (envelopes out and in, the relay
transport, the directory), ``node.cases`` (case state, clocks, periods, views, export),
``node.api`` (the local HTTP API and its client), ``node.alerts`` (webhook and e-mail),
``node.storage`` (the durable store). At the top: ``node.daemon`` (the :class:`Node`),
``node.services``, ``node.config``, ``node.keyfile``, ``node.events``, ``node.event_log``,
``node.witness``, ``node.render`` and ``node._wallclock`` (the one system clock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.config import CONFIG_TEMPLATE, NodeConfig, load_config
    from node.daemon import Node, run
    from node.keyfile import NodeKeys, create_keys, generate_keys, load_keys, rotate_key

__all__ = [
    "CONFIG_TEMPLATE",
    "Node",
    "NodeConfig",
    "NodeKeys",
    "create_keys",
    "generate_keys",
    "load_config",
    "load_keys",
    "rotate_key",
    "run",
]
__getattr__ = lazy_face(
    __name__,
    {
        "CONFIG_TEMPLATE": "config",
        "NodeConfig": "config",
        "load_config": "config",
        "Node": "daemon",
        "run": "daemon",
        "NodeKeys": "keyfile",
        "create_keys": "keyfile",
        "generate_keys": "keyfile",
        "load_keys": "keyfile",
        "rotate_key": "keyfile",
    },
)
