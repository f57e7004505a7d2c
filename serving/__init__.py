"""The listening side of the project's aiohttp servers: the relay and the node's local API.

Sits beside ``relay`` and ``node`` (both import it; it imports neither): the one place
where a listening socket is opened, so that no server of the project can be held open
by a peer that stalls (issue 11, "Exhaustion by an outsider or a member"), and where
requests that aiohttp's parser refuses before any handler runs get the one JSON error
shape (issue 11, "Input that passes one check"). :mod:`serving.config_file` reads either
server's TOML file, the one piece of start-up both share.
"""

from serving.bodies import ACCEPT_ENCODING, PEER_BODY_ERRORS, coding_refused, name_server
from serving.errors import JsonErrorRunner
from serving.guard import ConnectionLimits, GuardedSite, install_accept_log, runner_kwargs

__all__ = [
    "ACCEPT_ENCODING",
    "PEER_BODY_ERRORS",
    "ConnectionLimits",
    "GuardedSite",
    "JsonErrorRunner",
    "coding_refused",
    "install_accept_log",
    "name_server",
    "runner_kwargs",
]
