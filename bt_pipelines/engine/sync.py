"""Export date partitions of one Braintrust object into the lake. Plain Python, no Dagster.

One run reads its whole date range once, as one pinned snapshot, and routes each row to its
day's writer; then each day is committed through its manifest. Duplicates: a row's `id` and
its `_pagination_key` are fixed together at its first insert, and pages are keyset on
`_pagination_key`, so one `id` can only come back twice inside a single page (as an older
version next to a newer one). Keeping the highest `_xact_id` per page is therefore exact,
with memory for one page of ids, whatever the partition's size.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..sink.layout import PartitionPath
from ..sink.manifest import Manifest, commit
from ..sink.schema import TableSchema, to_batch
from ..sink.storage import LocalStorage, Storage
from ..sink.writers import PartitionWriter
from ..source import queries
from ..source.client import BraintrustClient
from ..source.reader import PageReader, read_watermark
from ..timefmt import day_start

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportTarget:
    """What to export and where it lands: one Braintrust object into one lake table."""

    table: str
    schema: TableSchema
    source_kind: str  # project_logs | experiment | dataset
    object_id: str
    object_name: str
    partition_keys: tuple[tuple[str, str], ...]  # e.g. (("project", "checkout-assistant"),)
    shape: str = "spans"
    filter: str | None = None

    def partition(self, day: date) -> PartitionPath:
        return PartitionPath(self.table, (*self.partition_keys, ("date", day.isoformat())))


@dataclass
class ExportOptions:
    format: str = "parquet"
    target_file_bytes: int = 256 * 1024 * 1024
    row_group_rows: int = 20_000  # files roll between row groups
    page_size: int = 1000
    prefetch: int = 2
    buffer_budget_bytes: int = 48 * 1024 * 1024  # all open partitions' buffers together
    run_id: str | None = None
    progress_every_pages: int = 20


@dataclass
class PartitionResult:
    day: date
    path: PartitionPath
    manifest: Manifest
    uri: str
    removed: list[str]


@dataclass
class ExportResult:
    partitions: list[PartitionResult] = field(default_factory=list)
    watermark: str | None = None
    pages: int = 0
    rows_read: int = 0
    duplicates_dropped: int = 0
    heavy_pages: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(p.manifest.rows for p in self.partitions)


def contiguous_ranges(days: Sequence[date]) -> list[list[date]]:
    """Split days into runs of consecutive days, each read with one query range."""
    ranges: list[list[date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][-1] + timedelta(days=1) == day:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    return ranges


def export_days(client: BraintrustClient, storage: Storage, target: ExportTarget, days: Sequence[date],
                options: ExportOptions | None = None,
                on_progress: Callable[[dict[str, Any]], None] | None = None) -> ExportResult:
    """Export the given UTC days of `target`, replacing those partitions in the lake."""
    options = options or ExportOptions()
    result = ExportResult()
    started = time.perf_counter()
    retries_before = client.stats.retries
    _sweep_dead_spools(storage)
    result.watermark = read_watermark(client, target.source_kind, target.object_id)
    with _long_lived_objects_frozen():
        for span in contiguous_ranges(days):
            result.partitions += _export_range(client, storage, target, span, options, result, on_progress)
    result.retries = client.stats.retries - retries_before
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the cyclic GC from rescanning every module object while pages stream.

    Each page allocates thousands of short-lived dicts; with Dagster, pyarrow and friends
    loaded, the GC's full collections then cost more than the export (measured: 29k -> 46k
    rows/s). Rows die by reference counting anyway, so nothing is kept longer.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _where(target: ExportTarget, first: date, last: date) -> str:
    where = queries.created_range(day_start(first), day_start(last + timedelta(days=1)))
    return f"({where}) AND ({target.filter})" if target.filter else where


def _export_range(client: BraintrustClient, storage: Storage, target: ExportTarget, days: list[date],
                  options: ExportOptions, result: ExportResult,
                  on_progress: Callable[[dict[str, Any]], None] | None) -> list[PartitionResult]:
    where = _where(target, days[0], days[-1])
    spool = storage.spool_dir()
    writers: dict[str, PartitionWriter] = {}
    try:
        if result.watermark is not None:
            reader = PageReader(client, target.source_kind, target.object_id, where, version=result.watermark,
                                shape=target.shape, page_size=options.page_size, prefetch=options.prefetch)
            wanted = {d.isoformat() for d in days}
            started = time.perf_counter()
            for page in reader.pages():
                rows, dropped = _latest_per_id(page)
                result.duplicates_dropped += dropped
                result.rows_read += len(page)
                _route(target, rows, wanted, writers, storage, spool, options)
                _keep_within_budget(writers, options.buffer_budget_bytes)
                if on_progress and reader.stats.pages % options.progress_every_pages == 0:
                    on_progress(_progress(reader, result, client, started, rows))
            result.pages += reader.stats.pages
            result.heavy_pages += reader.stats.heavy_pages
        # Store every day's files first, then commit: a storage failure leaves no day half-done.
        files_of = {day: (writers[day.isoformat()].close() if day.isoformat() in writers else []) for day in days}
        partitions = []
        query = queries.page(target.source_kind, target.object_id, where=where, after=None,
                             limit=options.page_size, shape=target.shape)
        for day, files in files_of.items():
            path = target.partition(day)
            manifest = Manifest(
                table=target.table, partition=dict(path.keys), format=options.format, watermark=result.watermark,
                files=files, query=query, run_id=options.run_id,
                source={"kind": target.source_kind, "id": target.object_id, "name": target.object_name,
                        "shape": target.shape, "filter": target.filter})
            removed = commit(storage, path, manifest)
            writers.pop(day.isoformat(), None)  # committed: its files are the lake's now
            partitions.append(PartitionResult(day, path, manifest, storage.uri(path.folder), removed))
        return partitions
    except BaseException:
        _discard_uncommitted(storage, writers)
        raise
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _discard_uncommitted(storage: Storage, writers: dict[str, PartitionWriter]) -> None:
    """A clean failure leaves the lake as it was: drop files stored but never committed."""
    for writer in writers.values():
        writer.abort()
        try:
            storage.delete([f.key for f in writer.files])
        except Exception:  # the original error matters more; the next commit removes leftovers
            log.warning("could not remove uncommitted files of %s", writer.partition.folder, exc_info=True)


def _latest_per_id(page: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per id within a page, the one with the highest `_xact_id`."""
    latest: dict[str, dict[str, Any]] = {}
    for row in page:
        kept = latest.get(row["id"])
        if kept is None or int(row["_xact_id"]) > int(kept["_xact_id"]):
            latest[row["id"]] = row
    if len(latest) == len(page):
        return page, 0
    return list(latest.values()), len(page) - len(latest)


def _route(target: ExportTarget, rows: list[dict[str, Any]], wanted: set[str], writers: dict[str, PartitionWriter],
           storage: Storage, spool: Path, options: ExportOptions) -> None:
    """Convert a page to Arrow once, then hand each day's rows to that day's writer."""
    if not rows:
        return
    batch = to_batch(target.schema, rows)
    day_of = [_day(row["created"]) for row in rows]
    unique = set(day_of)
    stray = unique - wanted
    if stray:
        raise RuntimeError(f"Braintrust returned rows created on {sorted(stray)}, outside the requested days "
                           f"{sorted(wanted)}; the lake was not changed")
    for day in unique:
        part = batch if len(unique) == 1 else batch.filter(pc.equal(pa.array(day_of), day))
        writer = writers.get(day)
        if writer is None:
            writer = writers[day] = PartitionWriter(storage, target.partition(date.fromisoformat(day)), target.schema,
                                                    options.format, spool,
                                                    target_file_bytes=options.target_file_bytes,
                                                    row_group_rows=options.row_group_rows)
        writer.add(part)


def _day(created: str) -> str:
    """The UTC date of Braintrust's `created` (always `...Z`; other offsets are converted)."""
    if created.endswith("Z"):
        return created[:10]
    return datetime.fromisoformat(created).astimezone(UTC).date().isoformat()


def _keep_within_budget(writers: dict[str, PartitionWriter], budget: int) -> None:
    while sum(w.buffered_bytes for w in writers.values()) > budget:
        max(writers.values(), key=lambda w: w.buffered_bytes).flush()


def _progress(reader: PageReader, result: ExportResult, client: BraintrustClient, started: float,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    elapsed = max(time.perf_counter() - started, 1e-9)
    return {"pages": reader.stats.pages, "rows": reader.stats.rows, "rows_per_s": reader.stats.rows / elapsed,
            "retries": client.stats.retries, "current_day": _day(rows[-1]["created"]) if rows else None}


def _sweep_dead_spools(storage: Storage) -> None:
    """Remove spool folders left by runs that died (kill -9) on this machine."""
    if not isinstance(storage, LocalStorage):
        return
    base = storage.root / "_bt_pipelines" / "tmp"
    if not base.is_dir():
        return
    for folder in base.iterdir():
        parts = folder.name.split("-")
        if len(parts) >= 2 and parts[0] == "run" and parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
