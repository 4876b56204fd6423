"""Benchmarks: run with `python -m bench.bench` (make bench)."""
