"""A country's node: keystore, outbox/inbox, receipts, cases and the relay client."""
