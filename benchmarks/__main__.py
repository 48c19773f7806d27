"""`python -m benchmarks <name> [options]`: measurements that are not tests."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {"emulator": "benchmarks.emulator"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        sys.exit(2)
    importlib.import_module(BENCHMARKS[sys.argv[1]]).main(sys.argv[2:])


main()
