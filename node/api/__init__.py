"""The node's local HTTP API (PROTOCOL.md §8.6): server, OpenAPI document and client.

The server reads cases and the store and sends through the node; the client is what the
CLI and integrators use. Nothing else in the node imports it but the services wiring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.api._officers import OfficerGate
    from node.api.client import NodeApiClient, NodeApiError, NodeNotRunningError
    from node.api.handlers import ApiContext, NodeView
    from node.api.server import ApiServer, check_loopback, create_api, ensure_token

__all__ = [
    "ApiContext",
    "ApiServer",
    "NodeApiClient",
    "NodeApiError",
    "NodeNotRunningError",
    "NodeView",
    "OfficerGate",
    "check_loopback",
    "create_api",
    "ensure_token",
]
__getattr__ = lazy_face(
    __name__,
    {
        "NodeApiClient": "client",
        "NodeApiError": "client",
        "NodeNotRunningError": "client",
        "ApiContext": "handlers",
        "ApiServer": "server",
        "NodeView": "handlers",
        "OfficerGate": "_officers",
        "check_loopback": "server",
        "create_api": "server",
        "ensure_token": "server",
    },
)
