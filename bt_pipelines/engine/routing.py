"""From a page of rows to Arrow parts per UTC day: the step full and incremental reads share."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..sink.convert import to_batch
from ..sink.layout import PartitionPath
from ..sink.records import UndecodablePage, decode_records
from ..sink.schema import TableSchema
from ..sink.storage import Storage
from ..sink.writers import PartitionWriter
from ..source.client import BraintrustClient
from ..source.reader import json_lines
from .model import ExportOptions, ExportResult, Progress


def page_rows(body: bytes) -> list[Any]:
    """A page's JSON lines as records; as dicts when msgspec cannot read them (orjson then says
    why, or reads what msgspec could not)."""
    try:
        return decode_records(body)
    except UndecodablePage:
        return json_lines(body)


def routed_pages(pages: Iterable[list[Any]], schema: TableSchema, units: Iterable[str], result: ExportResult,
                 options: ExportOptions, on_progress: Progress | None, client: BraintrustClient,
                 ) -> Iterator[tuple[list[Any], list[tuple[str, pa.RecordBatch]]]]:
    """Each page's rows (the newest per id) and its Arrow parts per UTC day, counted in `result`;
    progress is reported every few pages. Days outside `units` are refused (an "object" unit takes any)."""
    allowed = None if "object" in units else set(units)
    started = time.perf_counter()
    for number, page in enumerate(closing(pages), 1):
        rows, dropped = latest_per_id(page)
        result.rows_read += len(page)
        result.duplicates_dropped += dropped
        yield rows, parts_by_day(schema, rows, allowed)
        if on_progress and number % options.progress_every_pages == 0:
            day = utc_day(rows[-1]["created"]) if rows else None
            on_progress(result.progress(number, started, client.stats.retries, day))


def new_writer(storage: Storage, path: PartitionPath, schema: TableSchema, options: ExportOptions,
               spool: Path) -> PartitionWriter:
    return PartitionWriter(storage, path, schema, options.format, spool, target_file_bytes=options.target_file_bytes,
                           row_group_rows=options.row_group_rows)


def latest_per_id(page: list[Any]) -> tuple[list[Any], int]:
    """One row per id within a page, the one with the highest `_xact_id`."""
    if len({row["id"] for row in page}) == len(page):  # the usual page: nothing to choose
        return page, 0
    latest: dict[str, Any] = {}
    for row in page:
        kept = latest.get(row["id"])
        if kept is None or int(row["_xact_id"]) > int(kept["_xact_id"]):
            latest[row["id"]] = row
    return list(latest.values()), len(page) - len(latest)


def parts_by_day(schema: TableSchema, rows: list[Any], allowed: set[str] | None = None,
                 ) -> list[tuple[str, pa.RecordBatch]]:
    """Convert a page to Arrow once, then split it by the UTC day of each row (`YYYY-MM-DD`)."""
    if not rows:
        return []
    batch = to_batch(schema, rows)
    day_of = None
    if isinstance(rows[0], dict) and "__day" in rows[0]:  # whole-trace rows carry their trace's day
        day_of = pa.array([row["__day"] for row in rows], pa.string())
    parts = by_day(batch, day_of)
    outside = {day for day, _ in parts} - allowed if allowed is not None else set()
    if outside:
        raise RuntimeError(f"Braintrust returned rows created on {sorted(outside)}, outside the requested "
                           f"days {sorted(allowed or ())}; the lake was not changed")
    return parts


def by_day(data: pa.RecordBatch | pa.Table, day_of: pa.Array | None = None) -> list[tuple[str, Any]]:
    """`data` split by UTC day (`YYYY-MM-DD`): each row's `created` day (UTC already), or `day_of`."""
    if not data.num_rows:
        return []
    if day_of is None:
        day_of = pc.cast(pc.cast(data.column("created"), pa.date32()), pa.string())
    days = sorted(pc.unique(day_of).to_pylist())
    if len(days) == 1:
        return [(days[0], data)]
    return [(day, data.filter(pc.equal(day_of, day))) for day in days]


def utc_day(created: str) -> str:
    """The UTC date of Braintrust's `created` (always `...Z`; other offsets are converted)."""
    if created.endswith("Z"):
        return created[:10]
    return datetime.fromisoformat(created).astimezone(UTC).date().isoformat()


def closing(pages: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """Iterate pages and always close the source, so its prefetch thread stops on a failure."""
    iterator = iter(pages)
    try:
        yield from iterator
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
