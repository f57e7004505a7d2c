"""Coverage-guided fuzzing of every parser of untrusted bytes (issue 17, item 3).

One module per target (``tests/fuzz/t_<name>.py``), each with a ``one(data)`` entry that
feeds the bytes to the project's parsers and a committed seed corpus under
``tests/fuzz/corpus/<name>/`` (made by ``python -m tests.fuzz.seeds`` from the real
vectors and ``schemas.examples``). The rule every target enforces: no exception other
than the project's own (:class:`protocol.errors.Relay247Error` and its subclasses), no
exit, no hang, no out-of-memory.

``python -m tests.fuzz TARGET --seconds N`` runs one target under atheris (libFuzzer);
``tests/fuzz/test_fuzz_targets.py`` replays every corpus file and runs each target
briefly with hypothesis inside the test suite.
"""
