"""relay247's own test vectors: a deterministic generator and the files it writes."""
