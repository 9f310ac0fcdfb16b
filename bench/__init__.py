"""Switchboard benchmarks: `python -m bench SCENARIO [--quick] [--json]`."""
