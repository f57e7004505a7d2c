"""The relay's HTTP face: request authentication (RFC 9421), the /v1/ endpoints, the
mailbox WebSocket, the error middleware, OpenAPI, Prometheus metrics and rate limits.

It reads and writes only through :mod:`relay.storage`'s interface and never imports
:mod:`relay.audit`; :mod:`relay.app` wires both onto one aiohttp application.
"""
