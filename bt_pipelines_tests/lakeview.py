"""Read a lake back for assertions: what the manifests say, and what the folders hold."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
import pyarrow.parquet as pq

from bt_pipelines.emulator import RunningEmulator
from bt_pipelines.sink.layout import PartitionPath
from bt_pipelines.sink.manifest import Manifest, read_manifest
from bt_pipelines.sink.storage import Storage


def read_rows(storage: Storage, key: str) -> list[dict]:
    data = storage.get_bytes(key)
    assert data is not None, key
    if key.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pylist()
    return [orjson.loads(line) for line in gzip.decompress(data).splitlines()]


def partition_rows(storage: Storage, path: PartitionPath) -> list[dict]:
    """Every row of every data file in the partition's folder (manifest or not)."""
    return [row for key in storage.list(path.folder) for row in read_rows(storage, key)]


def lake_pairs(storage: Storage, path: PartitionPath) -> Counter:
    """(id, _xact_id) of every row in the folder, counted: a duplicate shows as a count of 2."""
    return Counter((r["id"], str(r["_xact_id"])) for r in partition_rows(storage, path))


def assert_folder_is_manifest(storage: Storage, path: PartitionPath) -> None:
    """The folder holds exactly the files the manifest lists: no orphans, no missing files."""
    manifest = read_manifest(storage, path)
    assert manifest is not None, f"no manifest for {path.folder}"
    assert sorted(storage.list(path.folder)) == sorted(f.key for f in manifest.files)
    assert manifest.rows == sum(len(read_rows(storage, f.key)) for f in manifest.files)


def source_pairs(bt: RunningEmulator, project_id: str, day: date, where: str | None = None) -> Counter:
    """(id, _xact_id) of the source's rows created on `day` (and matching `where`), walked by keyset."""
    pairs: Counter = Counter()
    last = None
    with bt.client() as client:
        while True:
            keyset = (f" AND _pagination_key > '{last}'" if last else "") + (f" AND ({where})" if where else "")
            query = (f"select: id, _xact_id, _pagination_key | from: project_logs('{project_id}') | filter: "
                     f"created >= '{day}' AND created < '{date.fromordinal(day.toordinal() + 1)}'{keyset} "
                     "| sort: _pagination_key asc | limit: 1000")
            rows = client.post("/btql", json={"query": query}).json()["data"]
            if not rows:
                return pairs
            pairs.update((r["id"], r["_xact_id"]) for r in rows)
            last = rows[-1]["_pagination_key"]


def object_pairs(bt: RunningEmulator, kind: str, object_id: str, version: str | None = None,
                 shape: str = "spans", where: str | None = None) -> Counter:
    """(id, _xact_id) of every row of an object (at `version`), walked by keyset."""
    pairs: Counter = Counter()
    last = None
    with bt.client() as client:
        while True:
            conditions = [c for c in (where, f"_pagination_key > '{last}'" if last else None) if c]
            query = (f"select: id, _xact_id, _pagination_key | from: {kind}('{object_id}') {shape}"
                     + (f" | filter: {' AND '.join(f'({c})' for c in conditions)}" if conditions else "")
                     + " | sort: _pagination_key asc | limit: 1000")
            body = {"query": query, **({"version": version} if version else {})}
            rows = client.post("/btql", json=body).json()["data"]
            if not rows:
                return pairs
            pairs.update((r["id"], r["_xact_id"]) for r in rows)
            last = rows[-1]["_pagination_key"]


def folder_pairs(storage: Storage, folder: str) -> Counter:
    """(id, _xact_id) of every row in every data file under a folder (all date sub-folders)."""
    return Counter((r["id"], str(r["_xact_id"])) for key in storage.list(folder) for r in read_rows(storage, key))


def edit_manifest(storage: Storage, path, edit: Callable[[Manifest], Any]) -> Any:
    """Change a committed manifest in place, as a bug or another tool could have; returns what `edit` did."""
    manifest = read_manifest(storage, path)
    done = edit(manifest)
    storage.put_bytes(path.manifest_key, manifest.to_json())
    return done


def assert_lake_equals_source(bt: RunningEmulator, storage: Storage, target: Any, days: list[date]) -> None:
    """Each day's partition holds exactly the source's (id, _xact_id) pairs (the target's filter
    applied), and its folder holds exactly what its manifest lists."""
    for day in days:
        path = target.day_path(day)
        assert lake_pairs(storage, path) == source_pairs(bt, target.object_id, day, target.filter), day
        assert_folder_is_manifest(storage, path)
