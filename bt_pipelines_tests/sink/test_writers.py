"""File writers: row groups are written on a background thread, and failures still surface."""

from __future__ import annotations

import multiprocessing
from concurrent import futures

import pyarrow as pa
import pytest

from bt_pipelines.sink.convert import to_batch
from bt_pipelines.sink.layout import PartitionPath
from bt_pipelines.sink.readers import read_ids
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.sink.storage import LocalStorage, StorageError, open_storage
from bt_pipelines.sink.writers import PartitionWriter


def _rows(prefix: str, count: int) -> pa.RecordBatch:
    return to_batch(PROJECT_LOGS, [{"id": f"{prefix}-{i}", "created": "2026-01-01T00:00:00.000Z", "_xact_id": "1",
                                    "_pagination_key": f"p{i:05d}", "input": {"i": i}} for i in range(count)])


def _write(storage: LocalStorage, name: str, groups: int = 3) -> list[str]:
    """Write `groups` row groups of 10 rows into partition `name`; the stored files' keys."""
    writer = PartitionWriter(storage, PartitionPath("t", (("part", name),)), PROJECT_LOGS, "parquet",
                             storage.spool_dir(), row_group_rows=10)
    for group in range(groups):
        writer.add(_rows(f"{name}-{group}", 10))
    return [f.key for f in writer.close()]


def test_every_row_group_written_in_the_background_is_in_the_file(tmp_path):
    storage = open_storage(str(tmp_path))
    [key] = _write(storage, "a", groups=5)
    assert len(read_ids(storage.root / key, "parquet")) == 50


def _write_in_child(root: str) -> None:
    _write(open_storage(root), "child")


def test_a_forked_child_writes_with_its_own_background_thread(tmp_path):
    storage = open_storage(str(tmp_path))
    _write(storage, "parent")  # the parent's writer thread exists now; a forked child has no such thread
    child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(str(tmp_path),))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert list((tmp_path / "t" / "part=child").glob("*.parquet"))


def _refusing_writer(tmp_path, monkeypatch) -> PartitionWriter:
    storage = open_storage(str(tmp_path))

    def refuse(*args, **kwargs):
        raise StorageError("the bucket said no")

    monkeypatch.setattr(storage, "put_file", refuse)
    writer = PartitionWriter(storage, PartitionPath("t", (("part", "x"),)), PROJECT_LOGS, "parquet",
                             storage.spool_dir(), row_group_rows=10, target_file_bytes=1)  # a file per row group
    writer.add(_rows("x", 10))  # flushed at once: written, and refused, on the background thread
    return writer


def test_a_failed_background_write_surfaces_at_close_and_discard_leaves_nothing(tmp_path, monkeypatch):
    writer = _refusing_writer(tmp_path, monkeypatch)
    with pytest.raises(StorageError, match="the bucket said no"):
        writer.close()
    writer.discard()
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_failed_background_write_stops_the_next_add(tmp_path, monkeypatch):
    writer = _refusing_writer(tmp_path, monkeypatch)
    futures.wait([writer.pending])
    with pytest.raises(StorageError, match="the bucket said no"):
        writer.add(_rows("y", 1))  # one row: no flush of its own, yet the failure is not left for later
    writer.discard()
