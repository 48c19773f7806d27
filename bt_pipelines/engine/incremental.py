"""Incremental refresh: bring committed units up to date by reading only the rows that changed.

A unit (a day, or a whole experiment or dataset) whose manifest matches the run's format,
schema and query is refreshed from its manifest's watermark: the rows with `_xact_id` above
it are read, pinned to the new watermark. Each is a new row or a newer version of one the unit
holds:
- a row's `_pagination_key` is fixed at its first insert, and the manifest records each file's
  key range, so only files whose range holds a changed row's key can hold its old version.
  Those candidates' ids are read; a file that holds changed rows is rewritten with their new
  versions in place of the old ones (copy-on-write). Every other file is kept as it is;
- rows found in no file are new, and go into new files;
- a filtered export also reads the ids of every changed row without its filter, so a row that
  stopped matching leaves the file that held it.
Deletes are invisible to such reads (a deleted row is not returned at all), so each refreshed
unit's row count is checked against the source's before it is committed; one that differs is
read whole instead. Each unit is committed by one manifest, and only if no other run committed
it meanwhile.
Memory: new rows stream to files; the changed rows that may replace older versions are held
as Arrow until the end of the read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..sink.layout import PartitionPath
from ..sink.manifest import Manifest, commit
from ..sink.readers import read_batches, read_ids
from ..sink.schema import SCHEMA_VERSION
from ..sink.storage import Storage
from ..sink.writers import FileInfo, PartitionWriter, keep_within_budget
from ..source import queries
from ..source.client import BraintrustClient
from ..source.reader import PageReader
from .model import ExportOptions, ExportResult, ExportTarget, PartitionResult, Progress
from .reconcile import differing_units
from .routing import by_day, closing, new_writer, page_rows, routed_pages, utc_day

_DATE_FOLDER = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")


def can_refresh(manifest: Manifest | None, target: ExportTarget, options: ExportOptions) -> bool:
    """Whether `manifest` is a base an incremental refresh can build on (else: read the unit whole)."""
    return (manifest is not None and target.incremental and not options.full_refresh
            and manifest.deleted_at is None and manifest.watermark is not None
            and manifest.format == options.format and manifest.schema_version == SCHEMA_VERSION
            and manifest.query == target.describe_query())


@dataclass
class Unit:
    """One committed unit being refreshed."""

    name: str  # the day (YYYY-MM-DD), or "object"
    path: PartitionPath
    base: Manifest
    fresh: dict[str, PartitionWriter] = field(default_factory=dict)  # new rows, by day
    maybe: list[pa.RecordBatch] = field(default_factory=list)  # changed rows whose key is in some file's range
    gone: list[pa.RecordBatch] = field(default_factory=list)  # (id, key) of changed rows that left the filter
    writers: list[PartitionWriter] = field(default_factory=list)  # every writer of this unit, until committed

    def in_some_file(self, keys: pa.Array) -> pa.Array:
        """For each key: could a file of the unit hold a row with it?"""
        mask = pa.array([False] * len(keys))
        for info in self.base.files:
            mask = pc.or_(mask, _in_range(info, keys))
        return mask


def _in_range(info: FileInfo, keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    if info.min_pagination_key is None or info.max_pagination_key is None:
        return pa.array([bool(info.rows)] * len(keys))
    return pc.and_(pc.greater_equal(keys, info.min_pagination_key), pc.less_equal(keys, info.max_pagination_key))


def refresh(client: BraintrustClient, storage: Storage, target: ExportTarget, units: dict[str, Unit],
            unit_of_day: Callable[[str], str], where: str | None, since: str, result: ExportResult,
            options: ExportOptions, spool: Path, on_progress: Progress | None = None,
            ) -> tuple[list[PartitionResult], list[str]]:
    """Refresh `units` (all built on the watermark `since`) from the rows changed after it.

    Before anything is committed, each refreshed unit's row count is checked against the
    source's at the new watermark (one aggregate query): a unit that differs (a row was
    deleted, or written below a watermark already read) is not committed but returned, to be
    read whole.
    """
    try:
        matched = _read_changes(client, storage, target, units, unit_of_day, where, since, result, options, spool,
                                on_progress)
        if target.filter:
            _read_departures(client, target, units, unit_of_day, where, since, matched, result, options)
        refreshed: dict[str, tuple[Manifest, int]] = {}
        for unit in units.values():
            files, rows_changed = _rewrite(storage, target, unit, result, options, spool)
            files = _compact(storage, target, unit, files, result, options, spool)
            refreshed[unit.name] = (target.manifest(unit.path, files, result.watermark, options), rows_changed)
        differing = differing_units(client, target, {name: m for name, (m, _) in refreshed.items()})
        committed = []
        for unit in units.values():
            if unit.name in differing:
                for writer in unit.writers:
                    writer.discard()
                unit.writers.clear()
                continue
            manifest, rows_changed = refreshed[unit.name]
            removed = commit(storage, unit.path, manifest, based_on=unit.base,
                             on_written=unit.writers.clear)  # committed: their files are the lake's now
            day = None if unit.name == "object" else date.fromisoformat(unit.name)
            committed.append(PartitionResult(day, unit.path, manifest, storage.uri(unit.path.folder), removed,
                                             "incremental", rows_changed))
        return committed, differing
    except BaseException:
        for writer in [w for unit in units.values() for w in unit.writers]:
            writer.discard()
        raise


def _read_changes(client: BraintrustClient, storage: Storage, target: ExportTarget, units: dict[str, Unit],
                  unit_of_day: Callable[[str], str], where: str | None, since: str, result: ExportResult,
                  options: ExportOptions, spool: Path, on_progress: Progress | None) -> set[str]:
    """Stream the changed rows: new ones into new files, possible updates into each unit's `maybe`."""
    condition = queries.all_of(where, target.filter, queries.changed_since(since))
    reader = PageReader(client, target.source_kind, target.object_id, condition, version=result.watermark,
                        page_size=options.page_size, prefetch=options.prefetch, decode=page_rows)
    ids: set[str] = set()
    for rows, parts in routed_pages(reader.pages(), target.schema, units, result, options, on_progress, client):
        if target.filter:
            ids.update(row["id"] for row in rows)
        for day, part in parts:
            unit = units[unit_of_day(day)]
            maybe = unit.in_some_file(part.column("_pagination_key"))
            if pc.any(maybe).as_py():
                unit.maybe.append(part.filter(maybe))
                part = part.filter(pc.invert(maybe))
            _fresh_writer(storage, target, unit, day, options, spool).add(part)
        keep_within_budget((w for unit in units.values() for w in unit.fresh.values()), options.buffer_budget_bytes)
    result.add_read(reader.stats)
    return ids


def _read_departures(client: BraintrustClient, target: ExportTarget, units: dict[str, Unit],
                     unit_of_day: Callable[[str], str], where: str | None, since: str, matched: set[str],
                     result: ExportResult, options: ExportOptions) -> None:
    """A filtered export: (id, key) of rows changed since `since` that no longer match the filter."""
    condition = queries.all_of(where, queries.changed_since(since))
    reader = PageReader(client, target.source_kind, target.object_id, condition, version=result.watermark,
                        page_size=options.page_size, prefetch=options.prefetch,
                        select="id, _pagination_key, _xact_id, created")
    for page in closing(reader.pages()):
        result.rows_read += len(page)
        left: dict[str, list[dict[str, Any]]] = {}  # by unit
        for row in page:
            if row["id"] not in matched:
                left.setdefault(unit_of_day(utc_day(row["created"])), []).append(row)
        for name, rows in left.items():
            ids = pa.array([row["id"] for row in rows], pa.string())
            keys = pa.array([row["_pagination_key"] for row in rows], pa.string())
            held = units[name].in_some_file(keys)
            if pc.any(held).as_py():
                units[name].gone.append(pa.record_batch({"id": ids.filter(held), "_pagination_key": keys.filter(held)}))
    result.add_read(reader.stats)


def _fresh_writer(storage: Storage, target: ExportTarget, unit: Unit, day: str, options: ExportOptions,
                  spool: Path) -> PartitionWriter:
    writer = unit.fresh.get(day)
    if writer is None:
        writer = unit.fresh[day] = _writer(storage, target, unit, date.fromisoformat(day), options, spool)
    return writer


def _writer(storage: Storage, target: ExportTarget, unit: Unit, day: date, options: ExportOptions,
            spool: Path) -> PartitionWriter:
    writer = new_writer(storage, target.day_path(day), target.schema, options, spool)
    unit.writers.append(writer)
    return writer


def _rewrite(storage: Storage, target: ExportTarget, unit: Unit, result: ExportResult, options: ExportOptions,
             spool: Path) -> tuple[list[FileInfo], int]:
    """The unit's files after its changes (kept, rewritten, new) and how many rows changed."""
    schema = target.schema.arrow
    maybe = pa.Table.from_batches(unit.maybe, schema=schema) if unit.maybe else schema.empty_table()
    gone = pa.Table.from_batches(unit.gone) if unit.gone else None
    files: list[FileInfo] = []
    changed = 0
    for info in unit.base.files:
        wanted = _ids_in_range(info, maybe, gone)
        if not len(wanted):
            files.append(info)
            continue
        with storage.local_copy(info.key, spool) as local:
            drop = wanted.filter(pc.is_in(wanted, value_set=read_ids(local, options.format)))
            if not len(drop):
                files.append(info)
                continue
            held = pc.is_in(maybe.column("id"), value_set=drop)
            replacements, maybe = maybe.filter(held), maybe.filter(pc.invert(held))
            writer = _writer(storage, target, unit, _day_of_file(info.key), options, spool)
            for batch in read_batches(local, options.format, target.schema):
                writer.add(batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=drop))))
            for batch in replacements.to_batches():
                writer.add(batch)
            files += writer.close()
            changed += len(drop)
            result.files_rewritten += 1
    for day, part in by_day(maybe):  # in some file's key range but in no file: new rows after all
        writer = _fresh_writer(storage, target, unit, day, options, spool)
        for batch in part.to_batches():
            writer.add(batch)
    for writer in unit.fresh.values():
        new = writer.close()
        changed += sum(f.rows for f in new)
        files += new
    return files, changed


def _ids_in_range(info: FileInfo, maybe: pa.Table, gone: pa.Table | None) -> pa.Array:
    """Ids of changed rows whose key lies in the file's key range: the file may hold them."""
    tables = [t for t in (maybe, gone) if t is not None]
    found = [t.column("id").filter(_in_range(info, t.column("_pagination_key"))) for t in tables]
    return pa.chunked_array([c for f in found for c in f.chunks], pa.string()).combine_chunks()


def _day_of_file(key: str) -> date:
    found = _DATE_FOLDER.search(key)
    if found is None:
        raise ValueError(f"{key} is not inside a date=YYYY-MM-DD folder")
    return date.fromisoformat(found.group(1))


def _compact(storage: Storage, target: ExportTarget, unit: Unit, files: list[FileInfo], result: ExportResult,
             options: ExportOptions, spool: Path) -> list[FileInfo]:
    """Merge a folder's small files once there are more than `max_small_files` of them.

    Each incremental refresh adds a file per changed day; without this, a day refreshed every
    few minutes would end as hundreds of small files, which every reader pays for.
    """
    small_below = options.target_file_bytes // 4
    by_folder: dict[str, list[FileInfo]] = {}
    for info in files:
        if info.bytes < small_below:
            by_folder.setdefault(info.key.rpartition("/")[0], []).append(info)
    merged = {id(i) for group in by_folder.values() if len(group) > options.max_small_files for i in group}
    if not merged:
        return files
    out = [info for info in files if id(info) not in merged]
    for group in by_folder.values():
        if len(group) <= options.max_small_files:
            continue
        writer = _writer(storage, target, unit, _day_of_file(group[0].key), options, spool)
        for info in group:
            with storage.local_copy(info.key, spool) as local:
                for batch in read_batches(local, options.format, target.schema):
                    writer.add(batch)
        out += writer.close()
        result.files_compacted += len(group)
    return out
