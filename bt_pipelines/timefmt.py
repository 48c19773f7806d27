"""Timestamps as Braintrust writes them, shared by the source and the sink."""

from __future__ import annotations

from datetime import UTC, date, datetime, time


def iso_ms(moment: datetime) -> str:
    """`2026-05-12T23:48:21.623Z`: UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)

