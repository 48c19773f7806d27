"""One line that says what machine a figure was measured on."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{os.cpu_count()} cores{memory}, {system}, Python {platform.python_version()}"
