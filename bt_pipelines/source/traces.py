"""Whole traces that contain a matching span, assigned to the UTC day of their root span.

Two phases, bounded memory: (1) the ids of traces with a span matching the filter, created
from the first requested day up to `grace` after the last (ids only); (2) those traces' spans,
100 traces at a time, each trace routed by its root span's day (its earliest span when the
root is missing). Traces whose root falls outside the requested days belong to another
partition and are skipped here. A matching span created more than `grace` after its root's
day is not seen by that day's run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from ..timefmt import day_start
from . import queries
from .client import BraintrustClient
from .reader import PageReader

TRACES_PER_FETCH = 100


def whole_trace_pages(client: BraintrustClient, kind: str, object_id: str, match: str, days: list[date], *,
                      version: str, grace: timedelta, page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    first, end = day_start(days[0]), day_start(days[-1] + timedelta(days=1))
    where = f"({match}) AND {queries.created_range(first, end + grace)}"
    finder = PageReader(client, kind, object_id, where, version=version, page_size=page_size,
                        select="id, _xact_id, _pagination_key, root_span_id")
    roots: list[str] = sorted({row["root_span_id"] for page in finder.pages() for row in page})
    wanted = {d.isoformat() for d in days}
    for start in range(0, len(roots), TRACES_PER_FETCH):
        chunk = roots[start : start + TRACES_PER_FETCH]
        where = f"root_span_id IN [{', '.join(queries.quote(r) for r in chunk)}]"
        spans = [row for page in PageReader(client, kind, object_id, where, version=version,
                                            page_size=page_size).pages() for row in page]
        yield [row for row in _assign_root_day(spans) if row["__day"] in wanted]


def _assign_root_day(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first_seen: dict[str, str] = {}
    root_day: dict[str, str] = {}
    for span in spans:
        trace, created = span["root_span_id"], span["created"]
        if span.get("is_root"):
            root_day[trace] = created
        if trace not in first_seen or created < first_seen[trace]:
            first_seen[trace] = created
    for span in spans:
        trace = span["root_span_id"]
        span["__day"] = (root_day.get(trace) or first_seen[trace])[:10]
    return spans
