"""Export Braintrust objects into the lake. Plain Python, no Dagster.

Two kinds of commit unit:
- a day (`export_days`): project logs, trace summaries and custom exports, one partition per
  UTC day; a ranged run reads its whole range once and routes rows to their day;
- a whole object (`export_object`): an experiment or a dataset, whose files sit in date
  sub-folders of the object's folder, committed by one manifest.
Either way the read is one snapshot pinned to the object's watermark, files are stored first,
then each unit's manifest is committed (see `sink.manifest`).

A unit already in the lake is refreshed incrementally (`engine.incremental`): only rows changed
since its manifest's watermark are read, and the result's row count is checked against the
source's before it is committed (a unit that differs is read whole). `full_refresh` reads every
unit whole; `reconcile` also checks the units nothing was written to since their last commit.

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
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..sink.convert import to_batch
from ..sink.layout import PartitionPath
from ..sink.manifest import Manifest, commit, read_manifest
from ..sink.schema import TableSchema
from ..sink.storage import LocalStorage, Storage
from ..sink.writers import FileInfo, PartitionWriter, keep_within_budget
from ..source import queries
from ..source.client import BraintrustClient
from ..source.errors import BraintrustError
from ..source.reader import PageReader, read_together, read_watermark
from ..source.traces import whole_trace_pages
from ..timefmt import iso_ms
from .incremental import Unit, can_refresh, refresh
from .model import ExportOptions, ExportResult, ExportTarget, PartitionResult, Progress
from .reconcile import differing_units, source_counts
from .routing import new_writer, page_rows, routed_pages

__all__ = ["ExportOptions", "ExportResult", "ExportTarget", "PartitionResult", "contiguous_ranges", "export_days",
           "export_object", "remove_object", "write_snapshot"]

log = logging.getLogger(__name__)


def contiguous_ranges(days: Sequence[date]) -> list[list[date]]:
    """Split days into runs of consecutive days, each read with one query range."""
    ranges: list[list[date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][-1] + timedelta(days=1) == day:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    return ranges


def split_days(days: Sequence[date], streams: int, rows: Sequence[int] | None = None) -> list[list[date]]:
    """Consecutive days in at most `streams` contiguous runs holding about as many rows each
    (`rows`: per day; by default, days count the same), none of them without rows unless all are.

    One reader reads each run. A day always comes from one reader, so its rows still arrive in
    key order; only pages of different days interleave, and each row goes to its day's writer.
    """
    if streams < 1:
        raise ValueError(f"streams must be at least 1, not {streams}")
    weights = list(rows) if rows is not None else [1] * len(days)
    if not sum(weights):
        return [list(days)] if days else []
    share = sum(weights) / streams
    runs: list[list[date]] = []
    totals: list[int] = []
    done = 0
    for day, weight in zip(days, weights, strict=True):
        if not runs or (weight and totals[-1] and done + weight / 2 >= share * len(runs) and len(runs) < streams):
            runs.append([])
            totals.append(0)
        runs[-1].append(day)
        totals[-1] += weight
        done += weight
    return runs


# -- entry points ---------------------------------------------------------------------------------
def export_days(client: BraintrustClient, storage: Storage, target: ExportTarget, days: Sequence[date],
                options: ExportOptions | None = None, on_progress: Progress | None = None) -> ExportResult:
    """Bring the given UTC days of `target` up to date in the lake (incrementally where possible)."""
    options = options or ExportOptions()
    with _export(client, storage, target) as result:
        paths = {d.isoformat(): target.day_path(d) for d in sorted(set(days))}
        found = {unit: read_manifest(storage, path) for unit, path in paths.items()}  # every commit checks it
        bases = _bases(found, target, options, result)
        whole = [u for u in paths if u not in bases]
        for group in _refresh_groups(bases):
            where = queries.created_on_days(date.fromisoformat(min(group)), date.fromisoformat(max(group)))
            whole += _refresh(client, storage, target, group, paths, lambda day: day, where, result, options,
                              on_progress)
        for span in contiguous_ranges([date.fromisoformat(u) for u in whole]):
            units = {d.isoformat(): target.day_path(d) for d in span}
            pages = _day_pages(client, target, span, result, options)
            result.partitions += _stream(storage, target, pages, units, found, lambda day: day, options, result,
                                         on_progress, client)
        result.partitions.sort(key=lambda p: p.path.folder)
    return result


def export_object(client: BraintrustClient, storage: Storage, target: ExportTarget,
                  options: ExportOptions | None = None, on_progress: Progress | None = None) -> ExportResult:
    """Bring one experiment or dataset up to date in the lake, as one unit."""
    options = options or ExportOptions()
    with _export(client, storage, target) as result:
        paths = {"object": target.object_path()}
        found = {"object": read_manifest(storage, paths["object"])}
        bases = _bases(found, target, options, result)
        differs = bool(bases) and bool(_refresh(client, storage, target, bases, paths, lambda day: "object", None,
                                                result, options, on_progress))
        if not bases or differs:  # never exported, or the refreshed object differs from the source
            pages = _pages(client, target, [None], result, options)
            result.partitions += _stream(storage, target, pages, paths, found, lambda day: "object", options,
                                         result, on_progress, client)
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
    with storage.spool() as spool:
        writer = new_writer(storage, path, schema, options, spool)
        try:
            writer.add(to_batch(schema, rows))
            files = writer.close()
            manifest = Manifest(table=schema.table, partition=dict(path.keys), format=options.format,
                                watermark=None, files=files, source=source, query="", run_id=options.run_id)
            return PartitionResult(None, path, manifest, storage.uri(path.folder), commit(storage, path, manifest))
        except BaseException:
            writer.discard()
            raise


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


def _bases(found: dict[str, Manifest | None], target: ExportTarget, options: ExportOptions,
           result: ExportResult) -> dict[str, Manifest]:
    """The units an incremental refresh can build on, with their manifests; every other is read whole."""
    if result.watermark is None:  # the object holds no rows (any more): every unit is read whole, empty
        return {}
    return {unit: m for unit, m in found.items() if m is not None and can_refresh(m, target, options)}


def _refresh_groups(bases: dict[str, Manifest]) -> list[dict[str, Manifest]]:
    """Consecutive days built on the same watermark: one read refreshes them together."""
    groups: list[dict[str, Manifest]] = []
    previous: tuple[date, str | None] | None = None
    for unit in sorted(bases):
        day, version = date.fromisoformat(unit), bases[unit].watermark
        if previous is None or previous != (day - timedelta(days=1), version):
            groups.append({})
        groups[-1][unit] = bases[unit]
        previous = (day, version)
    return groups


def _refresh(client: BraintrustClient, storage: Storage, target: ExportTarget, bases: dict[str, Manifest],
             paths: dict[str, PartitionPath], unit_of_day: Callable[[str], str], where: str | None,
             result: ExportResult, options: ExportOptions, on_progress: Progress | None) -> list[str]:
    """Refresh units built on one watermark; returns those to read whole (they differ from the source)."""
    since = next(iter(bases.values())).watermark
    assert since is not None and result.watermark is not None
    if int(since) > int(result.watermark):  # the source is older than the lake: restored, or not the same source
        log.warning("%s: Braintrust's newest _xact_id %s is older than the lake's %s; reading %d partitions whole",
                    target.table, result.watermark, since, len(bases))
        result.reconciled += sorted(bases)
        return sorted(bases)
    if int(since) == int(result.watermark):  # nothing was written since
        differing = differing_units(client, target, bases) if options.reconcile else []
        result.partitions += [_unchanged(storage, paths[u], m, options) for u, m in bases.items()
                              if u not in differing]
    else:
        units = {u: Unit(u, paths[u], m) for u, m in bases.items()}
        with storage.spool() as spool:
            committed, differing = refresh(client, storage, target, units, unit_of_day, where, since, result,
                                           options, spool, on_progress)
        result.partitions += committed
    for unit in differing:
        log.info("%s differs from the source at version %s: reading it whole", paths[unit].folder, result.watermark)
    result.reconciled += differing
    return differing


def _unchanged(storage: Storage, path: PartitionPath, manifest: Manifest, options: ExportOptions) -> PartitionResult:
    """A unit nothing was written to: kept as it is, unless a killed run left files beside it.

    Those are removed by committing the same files again: the commit's check then makes any
    run still writing the unit fail cleanly rather than commit files this one deleted.
    """
    removed: list[str] = []
    listed = {f.key for f in manifest.files}
    if any(key not in listed for key in storage.list(path.folder)):
        again = replace(manifest, committed_at=iso_ms(datetime.now(UTC)), run_id=options.run_id)
        removed = commit(storage, path, again, based_on=manifest)
        manifest = again
    day = date.fromisoformat(path.keys[-1][1]) if path.keys[-1][0] == "date" else None
    return PartitionResult(day, path, manifest, storage.uri(path.folder), removed, "unchanged")


def _day_pages(client: BraintrustClient, target: ExportTarget, days: list[date], result: ExportResult,
               options: ExportOptions) -> Iterator[list[Any]]:
    if target.whole_traces:
        if result.watermark is None:
            return iter(())
        return whole_trace_pages(client, target.source_kind, target.object_id, target.filter or "true", days,
                                 version=result.watermark, grace=target.trace_grace, page_size=options.page_size)
    runs = _runs_of_days(client, target, days, result, options)
    return _pages(client, target, [queries.created_on_days(r[0], r[-1]) for r in runs], result, options)


def _runs_of_days(client: BraintrustClient, target: ExportTarget, days: list[date], result: ExportResult,
                  options: ExportOptions) -> list[list[date]]:
    """The days in runs of about equal rows, one reader each: a stream for every two pages' worth
    of rows, up to `read_streams`. One count query says how many rows each day has."""
    if options.read_streams == 1 or len(days) == 1 or result.watermark is None:
        return [days]
    try:
        counts = source_counts(client, target, [d.isoformat() for d in days], result.watermark)
    except BraintrustError as exc:  # only a balance is lost: equal runs of days
        log.warning("%s: could not count rows per day (%s); reading equal runs of days", target.table, exc)
        return split_days(days, options.read_streams)
    rows = [counts.get(d.isoformat(), 0) for d in days]
    streams = min(options.read_streams, max(1, sum(rows) // (2 * options.page_size)))
    return split_days(days, streams, rows)


def _pages(client: BraintrustClient, target: ExportTarget, wheres: list[str | None], result: ExportResult,
           options: ExportOptions) -> Iterator[list[Any]]:
    """The rows matching each of `wheres` (and the target's filter): one reader for each, all read at once."""
    if result.watermark is None:  # nothing was ever written: nothing to read
        return
    readers = [PageReader(client, target.source_kind, target.object_id, queries.all_of(where, target.filter) or None,
                          version=result.watermark, shape=target.shape, page_size=options.page_size,
                          prefetch=options.prefetch, preview_length=-1 if target.shape == "summary" else None,
                          decode=page_rows) for where in wheres]
    try:
        yield from read_together(readers)
    finally:
        for reader in readers:
            result.add_read(reader.stats)


def _stream(storage: Storage, target: ExportTarget, pages: Iterable[list[Any]],
            units: dict[str, PartitionPath], found: dict[str, Manifest | None], unit_of_day: Callable[[str], str],
            options: ExportOptions, result: ExportResult, on_progress: Progress | None,
            client: BraintrustClient) -> list[PartitionResult]:
    """Route every row to its day's writer, store each unit's files, then commit each unit (each commit
    checks the unit's manifest is still `found[unit]`, the one the run started from)."""
    with storage.spool() as spool:
        writers: dict[str, PartitionWriter] = {}  # by day
        try:
            for _, parts in routed_pages(pages, target.schema, units, result, options, on_progress, client):
                for day, part in parts:
                    if day not in writers:
                        writers[day] = new_writer(storage, target.day_path(date.fromisoformat(day)), target.schema,
                                                  options, spool)
                    writers[day].add(part)
                keep_within_budget(writers.values(), options.buffer_budget_bytes)
            return _commit_all(storage, target, units, found, unit_of_day, writers, options, result)
        except BaseException:
            for writer in writers.values():
                writer.discard()
            raise


def _commit_all(storage: Storage, target: ExportTarget, units: dict[str, PartitionPath],
                found: dict[str, Manifest | None], unit_of_day: Callable[[str], str],
                writers: dict[str, PartitionWriter], options: ExportOptions,
                result: ExportResult) -> list[PartitionResult]:
    """Store every unit's files first, then commit: a storage failure leaves no unit half-done. A
    committed unit's writers leave `writers`: their files are the lake's now."""
    files: dict[str, list[FileInfo]] = {unit: [] for unit in units}
    for day, writer in writers.items():
        files[unit_of_day(day)] += writer.close()
    partitions = []
    for unit, path in units.items():
        manifest = target.manifest(path, files[unit], result.watermark, options)

        def forget(unit: str = unit) -> None:
            for day in [d for d in writers if unit_of_day(d) == unit]:
                del writers[day]

        removed = commit(storage, path, manifest, based_on=found[unit], on_written=forget)
        day = date.fromisoformat(unit) if unit != "object" else None
        partitions.append(PartitionResult(day, path, manifest, storage.uri(path.folder), removed, "full",
                                          manifest.rows))
    return partitions


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

