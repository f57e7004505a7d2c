"""The officers' web console (issue 13 §3): server-rendered pages on their own listener.

Sits between ``node`` and ``cli`` in the import rule: it uses the node's views, store
and officer accounts; ``node`` never imports it; ``relay247 node serve`` mounts it
through :func:`attach`. Reads the time only from the node's injected clock.
"""

from console._app import create_app
from console._context import ConsoleContext, ConsoleSettings
from console._server import Console, attach, tls_context

__all__ = ["Console", "ConsoleContext", "ConsoleSettings", "attach", "create_app", "tls_context"]
