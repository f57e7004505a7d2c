"""node/_threads.py under its former name, for the messaging room's modules that import it
from here (the local API and the attachment stream use it too, from node/)."""

from node._threads import join, run, settle, start

__all__ = ["join", "run", "settle", "start"]
