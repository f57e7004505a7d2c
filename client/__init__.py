"""relay247's HTTP client side, shared by the node, the auditor and the CLI.

Sits between ``protocol`` and its users (``schemas <- protocol <- client <- {node, audit}
<- cli``); the relay never imports it. Today it holds the one bounded full-body reader
every client answer goes through (:func:`read_body`), and the paging of log entries
that keeps each answer within it (:func:`fetch_entries`).
"""

from client._body import read_body
from client._pages import fetch_entries

__all__ = ["fetch_entries", "read_body"]
