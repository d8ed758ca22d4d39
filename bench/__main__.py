"""Run the benchmarks named on the command line, or all of them, and print their tables."""

import importlib
import sys

SUITES = [
    "facility",
    "process",
    "exports",
    "provisioner",
    "gateway",
    "load",
    "density",
    "startup",
    "wakes",
    "backup",
    "cluster",
    "crossnode",
    "move",
]


def main(argv: list[str]) -> int:
    names = argv or SUITES
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(
            f"Error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(SUITES)}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        print(f"\n== {name} ==", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
