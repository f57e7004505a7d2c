"""The commented ``node.toml`` that ``relay247 node init`` writes (every option, its default)."""

from __future__ import annotations

CONFIG_TEMPLATE = """\
# relay247 node configuration. Every option is shown with its default.
# Unknown keys and out-of-range values stop the node at start-up.

[node]
# This node's member id in the network directory.
member = "{member}"
# Keys and database live here; relative to this file.
data_dir = "."
# Encrypted key file and SQLite database, relative to data_dir.
keys_file = "node.keys"
database = "node.db"

[relays]
# Relays in failover order. Empty: use the relays the signed directory lists.
urls = [{relay_urls}]
# Seconds for one HTTP request to a relay.
request_timeout = 10.0

[directory]
# Coordinators' public keys and threshold (trust.json from `relay247 network init`).
trust_root = "{trust_root}"
# Seconds between directory refreshes (also refreshed when a key is unknown).
refresh_interval = 300.0

[sync]
# WebSocket push from the relay; false forces long-poll.
push = true
# Long-poll wait per request, seconds (the relay caps it).
poll_wait = 25
# Envelopes per mailbox page.
page_size = 100
# Outbox retries: first delay (seconds), doubling up to backoff_max, plus up to
# jitter x delay of random extra so many nodes do not retry in step.
backoff_base = 0.5
backoff_max = 300.0
jitter = 0.2
# Lifetime of the envelopes this node sends, seconds (the relay caps it, 7 days).
envelope_lifetime = 259200.0
# Envelopes submitted concurrently (one recipient's messages always stay in order).
max_in_flight = 16

[log]
# debug | info | warning | error
level = "info"
# json (for collectors) | console (for people)
format = "json"

[api]
# The local API for the CLI and case-management systems (served by `node serve`).
enabled = true
# Loopback only; any other address stops the node at start-up.
host = "127.0.0.1"
# 0 picks a free port at each start; the port in use is written to api.port in
# data_dir, where the `relay247 node` commands find it. Several nodes can share a host.
port = 0
# Bearer token, created with mode 0600 at first start, relative to data_dir.
token_file = "api.token"

[console]
# The officers' web console (served by `node serve` on its own listener).
enabled = true
# An office-network address is allowed; use TLS (cert_file, key_file) off loopback.
host = "127.0.0.1"
# 0 picks a free port at each start; the port in use is written to console.port.
port = 0
# TLS certificate chain and private key (PEM), relative to data_dir; both or neither.
cert_file = ""
# The certificate's private key (mode 0600).
key_file = ""
# A session unused this many minutes ends (the officer logs in again).
idle_minutes = 15.0
# A session ends this many hours after its login, however busy.
absolute_hours = 12.0
# Failed logins from one client address within the window before it gets 429.
login_attempts = 20
# The window, in minutes: a failure older than this no longer counts.
login_window_minutes = 15.0
# Reverse proxies in front of the console (addresses or CIDR networks): only from
# these is X-Forwarded-For believed. Empty: the connection's peer is the client.
trusted_proxies = []
# Seconds a browser may take to send a form's body.
body_timeout = 15.0
# Security keys (WebAuthn): the domain officers' browsers see (never an IP address) and
# the exact https:// origin of the console. Empty: "localhost" and http://localhost:PORT
# on loopback, the host name under TLS; an office IP address needs both set.
rp_id = ""
origin = ""

[clocks]
# Remind the officer this many hours before a deadline (Art. 29 expiry, MLA date...).
remind_before_hours = 72.0
# Seconds between two checks of every case.
interval = 60.0
# Per-country preservation periods (JSON); empty: the table shipped with the node.
periods_file = ""

[roster]
# The logins alerted at level 3 of the escalation ladder (the head of unit).
last_level = []

[escalation]
# The ladder (PROTOCOL.md §16): level 1 the officers on duty, level 2 the supervisors on
# duty, level 3 [roster] last_level. Minutes before level 2 and before level 3 when nobody
# acknowledged or took the case in charge. Empty: each procedure's ladder from
# procedures.json (30 and 30 for a case that follows no procedure). Replaces the
# deprecated [clocks] and [roster] escalate_after_minutes.
after_minutes = []
# Per procedure id (see `relay247 node procedures`), e.g. eu_epoc_emergency = [5.0, 5.0];
# wins over after_minutes and procedures.json.
procedures = {{}}
# The procedures file (JSON); empty: the file shipped with the node.
procedures_file = ""

[witness]
# Cosign the relay's audit-log checkpoints (every member is a witness).
enabled = true
# Seconds between two witness rounds.
interval = 10.0
# The log's verifier key, only if the directory does not list the relay's key.
log_key = ""

[retention]
# Retention (PROTOCOL.md §19, OPERATIONS.md "Retention and what an auditor can prove").
# Days after a case closed (terminal state, or preservation run out) before the bodies of
# its messages, their ciphertext and attachments' files are removed, each leaving a signed
# tombstone. 0 (the default): nothing is ever removed. A case on legal hold is exempt.
closed_case_bodies_days = 0
# Seconds between two scheduled retention passes.
interval = 3600.0
# Cases removed between two pauses that let the node's other writes through.
batch = 200
# VACUUM node.db after a pass that removed something (secure_delete already zeroes).
vacuum = false
# Calendar years after a case closed before the whole case is removed (headers, receipts,
# state, timeline, links), leaving one signed case tombstone (PROTOCOL.md §19.6). 0: never.
closed_case_metadata_years = 0
# Days an access-log entry is kept before its content is redacted to its leaf hash
# (PROTOCOL.md §14.6; the log's proofs still verify). 0: never. Held cases are exempt.
access_log_days = 0

[email_bridge]
# The OpenPGP e-mail bridge to members without a node (PROTOCOL.md §22, OPERATIONS.md
# "The e-mail bridge"). Off by default; when on, every server setting below is required.
enabled = false
# The address this node sends from; members reply to it. Make the node's OpenPGP key for
# it with `relay247 node openpgp-key` and give its certificate to the members.
from_address = ""
# The mail relay host messages are submitted through; "starttls" or "implicit" TLS.
smtp_host = ""
smtp_port = 587
smtp_tls = "starttls"
# Log in to the relay host with user and the password below (SMTP AUTH).
smtp_login = true
# The IMAP server of the bridge's mailbox; "starttls" or "implicit" TLS.
imap_host = ""
imap_port = 143
imap_tls = "starttls"
# The mailbox login.
user = ""
# "file": the password is in password_file (mode 0600, relative to data_dir);
# "keystore": in the OpenPGP key file, set with `relay247 node email-password`.
password_source = "file"
password_file = ""
# CA certificates (PEM) to check the servers against; empty: the system's.
ca_file = ""
# The node's OpenPGP key, encrypted with the node's passphrase, relative to data_dir.
key_file = "openpgp.key"
# Seconds one IMAP IDLE waits before the mailbox is searched again.
idle_seconds = 300.0
# Seconds for one SMTP or IMAP operation.
timeout = 30.0
# First delay (seconds) before a failed submission or log write is tried again.
retry_seconds = 5.0

# Alerts to the officer on duty. Webhooks get a signed JSON POST; e-mail goes by SMTP.
# [[alerts.webhooks]]
# url = "https://duty.example.org/relay247"
# secret_file = "webhook.secret"   # mode 0600, relative to data_dir
# [[alerts.smtp]]
# host = "smtp.example.org"
# sender = "relay247@example.org"
# recipients = ["duty@example.org"]
"""
