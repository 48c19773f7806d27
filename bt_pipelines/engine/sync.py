"""Export Braintrust objects into the lake. Plain Python, no Dagster.

Two kinds of commit unit:
- a day (`export_days`): project logs, trace summaries and custom exports, one partition per
  UTC day; a ranged run reads its whole range once and routes rows to their day;
- a whole object (`export_object`): an experiment or a dataset, whose files sit in date
  sub-folders of the object's folder, committed by one manifest.
Either way the read is one snapshot pinned to the object's watermark, files are stored first,
then each unit's manifest is committed (see `sink.manifest`).

Duplicates: a row's `id` and its `_pagination_key` are fixed together at its first insert,
and pages are keyset on `_pagination_key`, so one `id` can only come back twice inside a
single page (as an older version next to a newer one). Keeping the highest `_xact_id` per page
is therefore exact, with memory for one page of ids, whatever the partition's size.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from ..sink.writers import FileInfo, PartitionWriter
from ..source import queries
from ..source.client import BraintrustClient
from ..source.reader import PageReader, read_watermark
from ..source.traces import whole_trace_pages
from ..timefmt import day_start, iso_ms

log = logging.getLogger(__name__)
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ExportTarget:
    """What to export and where it lands: one Braintrust object into one lake table."""

    table: str
    schema: TableSchema
    source_kind: str  # project_logs | experiment | dataset
    object_id: str
    object_name: str
    partition_keys: tuple[tuple[str, str], ...]  # e.g. (("project", "checkout-assistant"),)
    shape: str = "spans"  # spans | summary
    filter: str | None = None  # a BTQL/SQL filter expression
    whole_traces: bool = False  # with `filter`: every span of each trace with a matching span
    trace_grace: timedelta = timedelta(hours=24)  # how late a matching span may follow its root's day

    def day_path(self, day: date) -> PartitionPath:
        return PartitionPath(self.table, (*self.partition_keys, ("date", day.isoformat())))

    def object_path(self) -> PartitionPath:
        return PartitionPath(self.table, self.partition_keys)

    def source(self) -> dict[str, Any]:
        return {"kind": self.source_kind, "id": self.object_id, "name": self.object_name, "shape": self.shape,
                "filter": self.filter, "whole_traces": self.whole_traces}


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
    day: date | None  # None for a whole-object unit
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
    stale_replaced: int = 0
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


# -- entry points ---------------------------------------------------------------------------------
def export_days(client: BraintrustClient, storage: Storage, target: ExportTarget, days: Sequence[date],
                options: ExportOptions | None = None, on_progress: Progress | None = None) -> ExportResult:
    """Export the given UTC days of `target`, replacing those partitions in the lake."""
    options = options or ExportOptions()
    with _export(client, storage, target) as result:
        for span in contiguous_ranges(days):
            units = {d.isoformat(): target.day_path(d) for d in span}
            pages = _day_pages(client, target, span, result, options)
            result.partitions += _stream(storage, target, pages, units, lambda day: day, options, result,
                                         on_progress, client)
    return result


def export_object(client: BraintrustClient, storage: Storage, target: ExportTarget,
                  options: ExportOptions | None = None, on_progress: Progress | None = None) -> ExportResult:
    """Export every row of one experiment or dataset as one unit, replacing it in the lake."""
    options = options or ExportOptions()
    with _export(client, storage, target) as result:
        unit = "object"
        pages = _pages(client, target, None, result, options)
        result.partitions += _stream(storage, target, pages, {unit: target.object_path()}, lambda day: unit,
                                     options, result, on_progress, client)
    return result


def remove_object(storage: Storage, target: ExportTarget, options: ExportOptions | None = None) -> PartitionResult:
    """The object is gone from Braintrust: record that in its manifest and delete its files."""
    options = options or ExportOptions()
    path = target.object_path()
    manifest = Manifest(table=target.table, partition=dict(path.keys), format=options.format, watermark=None,
                        files=[], source=target.source(), query="", run_id=options.run_id,
                        deleted_at=iso_ms(datetime.now(UTC)))
    return PartitionResult(None, path, manifest, storage.uri(path.folder), commit(storage, path, manifest))


def write_snapshot(storage: Storage, path: PartitionPath, schema: TableSchema, rows: list[dict[str, Any]],
                   source: dict[str, Any], options: ExportOptions | None = None) -> PartitionResult:
    """Replace a small table (a catalog) with `rows`, through the same writer and commit."""
    options = options or ExportOptions()
    spool = storage.spool_dir()
    writer = PartitionWriter(storage, path, schema, options.format, spool, target_file_bytes=options.target_file_bytes)
    try:
        writer.add(to_batch(schema, rows))
        files = writer.close()
        manifest = Manifest(table=schema.table, partition=dict(path.keys), format=options.format, watermark=None,
                            files=files, source=source, query="", run_id=options.run_id)
        return PartitionResult(None, path, manifest, storage.uri(path.folder), commit(storage, path, manifest))
    except BaseException:
        _discard(storage, [writer])
        raise
    finally:
        shutil.rmtree(spool, ignore_errors=True)


# -- the shared machinery -------------------------------------------------------------------------
@contextmanager
def _export(client: BraintrustClient, storage: Storage, target: ExportTarget) -> Iterator[ExportResult]:
    result = ExportResult()
    started = time.perf_counter()
    retries_before = client.stats.retries
    _sweep_dead_spools(storage)
    result.watermark = read_watermark(client, target.source_kind, target.object_id)
    with _long_lived_objects_frozen():
        yield result
    result.retries = client.stats.retries - retries_before
    result.seconds = time.perf_counter() - started


def _day_pages(client: BraintrustClient, target: ExportTarget, days: list[date], result: ExportResult,
               options: ExportOptions) -> Iterator[list[dict[str, Any]]]:
    if target.whole_traces:
        if result.watermark is None:
            return iter(())
        return whole_trace_pages(client, target.source_kind, target.object_id, target.filter or "true", days,
                                 version=result.watermark, grace=target.trace_grace, page_size=options.page_size)
    where = queries.created_range(day_start(days[0]), day_start(days[-1] + timedelta(days=1)))
    return _pages(client, target, where, result, options)


def _pages(client: BraintrustClient, target: ExportTarget, where: str | None, result: ExportResult,
           options: ExportOptions) -> Iterator[list[dict[str, Any]]]:
    if result.watermark is None:  # nothing was ever written: nothing to read
        return
    where = queries.all_of(where, target.filter) or None
    reader = PageReader(client, target.source_kind, target.object_id, where, version=result.watermark,
                        shape=target.shape, page_size=options.page_size, prefetch=options.prefetch,
                        preview_length=-1 if target.shape == "summary" else None)
    yield from reader.pages()
    result.pages += reader.stats.pages
    result.heavy_pages += reader.stats.heavy_pages
    result.stale_replaced += reader.stats.stale_replaced


def _stream(storage: Storage, target: ExportTarget, pages: Iterable[list[dict[str, Any]]],
            units: dict[str, PartitionPath], unit_of_day: Callable[[str], str], options: ExportOptions,
            result: ExportResult, on_progress: Progress | None, client: BraintrustClient) -> list[PartitionResult]:
    """Route every row to its day's writer, store each unit's files, then commit each unit."""
    spool = storage.spool_dir()
    writers: dict[str, PartitionWriter] = {}  # by day
    started = time.perf_counter()
    try:
        for number, page in enumerate(_closing(pages), 1):
            rows, dropped = _latest_per_id(page)
            result.duplicates_dropped += dropped
            result.rows_read += len(page)
            _route(target, rows, units, unit_of_day, writers, storage, spool, options)
            _keep_within_budget(writers, options.buffer_budget_bytes)
            if on_progress and number % options.progress_every_pages == 0:
                on_progress(_progress(number, result, client, started, rows))
        # Store every unit's files first, then commit: a storage failure leaves no unit half-done.
        files: dict[str, list[FileInfo]] = {unit: [] for unit in units}
        for day, writer in writers.items():
            files[unit_of_day(day)] += writer.close()
        partitions = []
        for unit, path in units.items():
            manifest = Manifest(table=target.table, partition=dict(path.keys), format=options.format,
                                watermark=result.watermark, files=files[unit], source=target.source(),
                                query=_describe_query(target), run_id=options.run_id)
            removed = commit(storage, path, manifest)
            for day in [d for d in writers if unit_of_day(d) == unit]:
                del writers[day]  # committed: these files are the lake's now
            day = date.fromisoformat(unit) if unit != "object" else None
            partitions.append(PartitionResult(day, path, manifest, storage.uri(path.folder), removed))
        return partitions
    except BaseException:
        _discard(storage, list(writers.values()))
        raise
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _closing(pages: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Iterate pages and always close the source, so its prefetch thread stops on a failure."""
    iterator = iter(pages)
    try:
        yield from iterator
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()


def _describe_query(target: ExportTarget) -> str:
    """What the manifest records as the query: the source, shape and filter (never a secret)."""
    parts = [f"from: {queries.source(target.source_kind, target.object_id, target.shape)}"]
    if target.filter:
        parts.append(f"filter: {target.filter}")
    if target.whole_traces:
        parts.append("whole traces")
    return " | ".join(parts)


def _discard(storage: Storage, writers: list[PartitionWriter]) -> None:
    """A clean failure leaves the lake as it was: drop files stored but never committed."""
    for writer in writers:
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


def _route(target: ExportTarget, rows: list[dict[str, Any]], units: dict[str, PartitionPath],
           unit_of_day: Callable[[str], str], writers: dict[str, PartitionWriter], storage: Storage, spool: Path,
           options: ExportOptions) -> None:
    """Convert a page to Arrow once, then hand each day's rows to that day's writer."""
    if not rows:
        return
    batch = to_batch(target.schema, rows)
    day_of = [row.get("__day") or _day(row["created"]) for row in rows]
    unique = set(day_of)
    days = pa.array(day_of) if len(unique) > 1 else None
    stray = {d for d in unique if unit_of_day(d) not in units}
    if stray:
        raise RuntimeError(f"Braintrust returned rows created on {sorted(stray)}, outside the requested days "
                           f"{sorted(units)}; the lake was not changed")
    for day in unique:
        part = batch if days is None else batch.filter(pc.equal(days, day))
        writer = writers.get(day)
        if writer is None:
            writer = writers[day] = PartitionWriter(storage, target.day_path(date.fromisoformat(day)), target.schema,
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


def _progress(pages: int, result: ExportResult, client: BraintrustClient, started: float,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    elapsed = max(time.perf_counter() - started, 1e-9)
    return {"pages": pages, "rows": result.rows_read, "rows_per_s": result.rows_read / elapsed,
            "retries": client.stats.retries, "current_day": _day(rows[-1]["created"]) if rows else None}


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


def _sweep_dead_spools(storage: Storage) -> None:
    """Remove spool folders left by runs that died (kill -9) on this machine."""
    if not isinstance(storage, LocalStorage):
        return
    base = storage.root / "_bt_pipelines" / "tmp"
    if not base.is_dir():
        return
    host = socket.gethostname()
    for folder in base.iterdir():  # run.<host>.<pid>.<random>: only this host's, whose process is gone
        owner, _, pid_and_rest = folder.name.removeprefix("run.").rpartition(".")[0].rpartition(".")
        if owner == host and pid_and_rest.isdigit() and not _alive(int(pid_and_rest)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

