"""Checks that prove a lake partition is right: it matches the source, holds each id once, and
has the documented schema. Plain Python; the Dagster layer turns them into asset checks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..sink.layout import PartitionPath
from ..sink.manifest import Manifest, read_manifest
from ..sink.readers import read_ids, read_schema
from ..sink.schema import SCHEMA_VERSION, TableSchema
from ..sink.storage import Storage
from ..source.client import BraintrustClient
from .model import ExportTarget
from .reconcile import source_count


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _unmaterialized(path: PartitionPath) -> CheckOutcome:
    return CheckOutcome(False, f"{path.folder} has no manifest: it was never materialized; materialize it")


def matches_source(client: BraintrustClient, storage: Storage, target: ExportTarget, path: PartitionPath,
                   day: date | None) -> CheckOutcome:
    """The partition's row count equals the source's for the same range, at the manifest's version."""
    manifest = read_manifest(storage, path)
    if manifest is None:
        return _unmaterialized(path)
    if manifest.deleted_at:
        return CheckOutcome(True, f"the object was deleted from Braintrust at {manifest.deleted_at}; the lake "
                                  "holds none of its rows", {"lake_rows": 0})
    expected = 0 if manifest.watermark is None else source_count(client, target, day, manifest.watermark)
    metadata = {"lake_rows": manifest.rows, "source_rows": expected, "version": manifest.watermark or ""}
    if manifest.rows == expected:
        return CheckOutcome(True, f"{manifest.rows} rows, as in Braintrust at version {manifest.watermark}", metadata)
    return CheckOutcome(False, f"the lake has {manifest.rows} rows but Braintrust has {expected} for the same range "
                               f"at version {manifest.watermark}: re-materialize this partition", metadata)


def unique_ids(storage: Storage, path: PartitionPath) -> CheckOutcome:
    """No `id` twice in the partition."""
    manifest = read_manifest(storage, path)
    if manifest is None:
        return _unmaterialized(path)
    ids = pa.chunked_array([read_ids(local, manifest.format) for _, local in _local_files(storage, manifest)],
                           pa.string())
    rows = len(ids)
    distinct = pc.count_distinct(ids).as_py() if rows else 0
    metadata = {"rows": rows, "duplicate_ids": rows - distinct}
    if distinct == rows:
        return CheckOutcome(True, f"{rows} rows, each id once", metadata)
    counts = pc.value_counts(ids)
    twice = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")[:3].to_pylist()
    return CheckOutcome(False, f"{rows - distinct} rows repeat an id (e.g. {twice}): re-materialize this partition; "
                               "if it persists, report it with these ids", metadata)


def matches_schema(storage: Storage, path: PartitionPath, schema: TableSchema) -> CheckOutcome:
    """Every file has the documented schema of this version."""
    manifest = read_manifest(storage, path)
    if manifest is None:
        return _unmaterialized(path)
    problems = []
    if manifest.schema_version != SCHEMA_VERSION:
        problems.append(f"the manifest says schema version {manifest.schema_version}, this code writes "
                        f"{SCHEMA_VERSION}")
    expected = schema.arrow.remove_metadata()
    for key, local in _local_files(storage, manifest):
        found = read_schema(local, manifest.format)
        if isinstance(found, pa.Schema) and not found.remove_metadata().equals(expected):
            problems.append(f"{key}: {_schema_difference(found, expected)}")
        elif isinstance(found, list) and found != [f.name for f in expected]:
            problems.append(f"{key}: columns {found} differ from {[f.name for f in expected]}")
    metadata = {"files": len(manifest.files), "schema_version": manifest.schema_version}
    if not problems:
        return CheckOutcome(True, f"{len(manifest.files)} files with schema version {SCHEMA_VERSION}", metadata)
    return CheckOutcome(False, "files that do not match the documented schema: " + "; ".join(problems[:5])
                        + " -- re-materialize this partition to rewrite them", metadata)


def _local_files(storage: Storage, manifest: Manifest) -> Iterator[tuple[str, Path]]:
    """Each listed file as a local path, one at a time (a bucket's are downloaded, then removed)."""
    with tempfile.TemporaryDirectory(prefix="bt-check-") as folder:
        for info in manifest.files:
            with storage.local_copy(info.key, Path(folder)) as local:
                yield info.key, local


def _schema_difference(found: pa.Schema, expected: pa.Schema) -> str:
    for want in expected:
        got = found.field(want.name) if want.name in found.names else None
        if got is None:
            return f"column {want.name} is missing"
        if not got.type.equals(want.type):
            return f"column {want.name} is {got.type}, not {want.type}"
    extra = [n for n in found.names if n not in expected.names]
    return f"unexpected columns {extra}" if extra else "columns are in another order"
