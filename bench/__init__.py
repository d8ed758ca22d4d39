"""Benchmarks: `make bench` (or `python -m bench [NAME ...]`) prints figures; nothing here asserts."""
