"""The partition manifest: which files make up a partition, and the commit that swaps them in.

Commit order: (1) the new files are already stored under new names; (2) the manifest is written
in one atomic PUT/rename; (3) every file in the partition's folder that the new manifest does
not list is deleted. A crash before (2) leaves the previous manifest valid (the new files are
orphans); a crash before (3) leaves old files behind. Either way the next commit of that
partition deletes the leftovers, and the manifest always names exactly the partition's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from ..timefmt import iso_ms
from .layout import PartitionPath
from .schema import SCHEMA_VERSION
from .storage import Storage, StorageError
from .writers import FileInfo

log = logging.getLogger(__name__)


@dataclass
class Manifest:
    table: str
    partition: dict[str, str]
    format: str
    watermark: str | None
    files: list[FileInfo]
    source: dict[str, Any]
    query: str
    schema_version: int = SCHEMA_VERSION
    committed_at: str = field(default_factory=lambda: iso_ms(datetime.now(UTC)))
    run_id: str | None = None
    deleted_at: str | None = None  # the object is gone from Braintrust; its files were removed

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def min_created(self) -> str | None:
        return min((f.min_created for f in self.files if f.min_created), default=None)

    @property
    def max_created(self) -> str | None:
        return max((f.max_created for f in self.files if f.max_created), default=None)

    def to_json(self) -> bytes:
        body = {
            "table": self.table, "partition": self.partition, "format": self.format,
            "schema_version": self.schema_version, "watermark": self.watermark,
            "rows": self.rows, "bytes": self.bytes, "min_created": self.min_created,
            "max_created": self.max_created, "files": [f.to_dict() for f in self.files],
            "source": self.source, "query": self.query, "committed_at": self.committed_at, "run_id": self.run_id,
            "deleted_at": self.deleted_at,
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = orjson.loads(data)
        return cls(table=raw["table"], partition=raw["partition"], format=raw["format"],
                   watermark=raw["watermark"], files=[FileInfo(**f) for f in raw["files"]],
                   source=raw["source"], query=raw["query"], schema_version=raw["schema_version"],
                   committed_at=raw["committed_at"], run_id=raw.get("run_id"), deleted_at=raw.get("deleted_at"))


def _identity(manifest: Manifest | None) -> tuple[str, str | None] | None:
    return None if manifest is None else (manifest.committed_at, manifest.run_id)


def read_manifest(storage: Storage, path: PartitionPath) -> Manifest | None:
    data = storage.get_bytes(path.manifest_key)
    return None if data is None else Manifest.from_json(data)


class ConcurrentCommit(RuntimeError):
    """Another run committed the partition while this one was building on its previous state."""


def commit(storage: Storage, path: PartitionPath, manifest: Manifest,
           based_on: Manifest | None | Literal["unchecked"] = "unchecked",
           on_written: Callable[[], None] | None = None) -> list[str]:
    """Make `manifest` the partition's truth, then delete what it no longer lists.

    `based_on`: the manifest (or None: no manifest) the run found when it started. If the
    partition's manifest is no longer that one, another run committed meanwhile: refuse, as
    this commit would drop that run's rows or delete its files (nothing of the partition
    changes; this run's files become orphans the next commit removes).

    Once the manifest is written the partition is committed: failing to delete leftovers then
    only leaves orphans for the next commit, so it is logged, not raised. `on_written` runs at
    that moment, before anything can interrupt the clean-up: the caller stops treating the new
    files as its own to discard.
    """
    if based_on != "unchecked":
        current = read_manifest(storage, path)
        if _identity(current) != _identity(based_on):
            raise ConcurrentCommit(
                f"{path.folder} was committed by another run (run {current.run_id if current else None}) while this "
                "run was writing it; nothing was changed: materialize the partition again")
    storage.put_bytes(path.manifest_key, manifest.to_json())
    if on_written is not None:
        on_written()
    return remove_unlisted(storage, path, manifest)


def remove_unlisted(storage: Storage, path: PartitionPath, manifest: Manifest) -> list[str]:
    """Delete the files of the partition's folder that `manifest` does not list."""
    keep = {f.key for f in manifest.files}
    try:
        stale = [key for key in storage.list(path.folder) if key not in keep]
        storage.delete(stale)
    except StorageError as exc:
        log.warning("%s is committed, but its old files could not be removed (the next commit will): %s",
                    path.folder, exc)
        return []
    return stale
