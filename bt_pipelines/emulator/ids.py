"""Transaction ids, pagination keys and timestamps, laid out as observed on the real service."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_XACT_PREFIX = 0x0DE1 << 48
MAX_ROWS_PER_XACT = 1 << 16  # the pagination key keeps 16 bits for a row's place in its write


class XactClock:
    """`(0x0DE1 << 48) | (unix_seconds << 16) | counter`: fixed width, so string order is time order."""

    def __init__(self, last: int = 0):
        self.last = last

    def next(self, at: float | None = None) -> int:
        seconds = int(time.time() if at is None else at)
        self.last = max(self.last + 1, _XACT_PREFIX | (seconds << 16))
        return self.last


def pagination_key(first_xact: int, sequence: int) -> str:
    """`"p"` + 20 digits of `((first_xact & 0xFFFFFFFFFFFF) << 16) | sequence`."""
    return "p%020d" % (((first_xact & 0xFFFFFFFFFFFF) << 16) | (sequence & 0xFFFF))


def format_ts(micros: int) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as the real service writes `created`."""
    tm = time.gmtime(micros // 1_000_000)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (*tm[:6], micros % 1_000_000 // 1000)


def parse_ts(value: str) -> int:
    """Micros since the epoch from an ISO date or timestamp; naive times are UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_micros() -> int:
    return time.time_ns() // 1000
