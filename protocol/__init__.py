"""Sans-I/O protocol core of relay247: bytes, keys and a ``now`` argument in, verified objects out."""
