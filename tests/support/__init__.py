"""Helpers shared by the tests (and usable by the benchmarks): ports, waiting, installations."""
