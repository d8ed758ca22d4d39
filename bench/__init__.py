"""Benchmarks: `make bench` (`python -m bench [NAME ...]`) prints figures; nothing asserts."""
