"""Connection limits for the aiohttp servers of the relay and of the node's local API.

Sits beside ``relay`` and ``node`` (both import it; it imports neither): the one place
where a listening socket is opened, so that no server of the project can be held open
by a peer that stalls (issue 11, "Exhaustion by an outsider or a member").
"""

from serving.guard import ConnectionLimits, GuardedSite, install_accept_log

__all__ = ["ConnectionLimits", "GuardedSite", "install_accept_log"]
