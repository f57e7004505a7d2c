"""The relay's audit log duties: the background checkpointer (signing, expiry, start-up
integrity I1–I5, halting) and the /v1/audit/ routes (PROTOCOL.md §7.2).

It sits above :mod:`relay.http` (the cosignature route authenticates as every write
does) and :mod:`relay.storage`; neither of them imports it.
"""
