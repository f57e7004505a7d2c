"""A country's node: keystore, outbox/inbox, receipts, cases and the relay client.

One room per concern; each room's ``__init__`` is its public face (lazy, so importing
one name does not load the room): ``node.messaging`` (envelopes out and in, the relay
transport, the directory), ``node.cases`` (case state, clocks, periods, views, export),
``node.api`` (the local HTTP API and its client), ``node.alerts`` (webhook and e-mail),
``node.storage`` (the durable store). At the top: ``node.daemon`` (the :class:`Node`),
``node.services``, ``node.config``, ``node.keyfile``, ``node.events``, ``node.event_log``,
``node.witness``, ``node.render`` and ``node._wallclock`` (the one system clock).
"""
