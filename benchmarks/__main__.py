"""`python -m benchmarks [options]` compares exporters; `python -m benchmarks emulator` measures the emulator;
`python -m benchmarks incremental` follows a busy day through Dagster.

Measurements, not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {"emulator": "benchmarks.emulator", "incremental": "benchmarks.incremental"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        importlib.import_module(SUBCOMMANDS[sys.argv[1]]).main(sys.argv[2:])
    else:
        importlib.import_module("benchmarks.compare").main(sys.argv[1:])


main()
