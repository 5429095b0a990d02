"""Benchmarks (run as scripts, not tests): `python -m tui.bench.dashboard`."""
