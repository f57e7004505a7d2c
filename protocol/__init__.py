"""Sans-I/O protocol core of relay247.

Bytes, keys and a ``now`` argument in; verified objects out. No asyncio, sockets, files
or wall clock. Other packages import the public modules: ``protocol.envelope``,
``protocol.receipt``, ``protocol.body``, ``protocol.directory``, ``protocol.keys``,
``protocol.keystore``, ``protocol.merkle``, ``protocol.note``, ``protocol.checkpoint``,
``protocol.cosignature``, ``protocol.tiles``, ``protocol.httpsig``, ``protocol.errors``.
"""
