"""Model-based tests (hypothesis stateful): the relay store and the node's case machine
against small in-memory models (issue 17, item 4). ``RELAY247_MODEL_EXAMPLES`` sets how
many runs each machine makes (the default keeps each module well under a minute)."""
