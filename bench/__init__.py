"""Benchmarks: run each as ``python -m bench.NAME`` (see README.md)."""
