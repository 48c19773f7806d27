"""File writers: Arrow batches in, finished Parquet (ZSTD) or JSONL.gz files out.

A writer keeps a small buffer, writes it as one Parquet row group (or a run of JSON lines),
and starts a new file when the current one reaches the size target, handing each finished
file to storage under a fresh uuid name. Memory stays at one buffer per open partition (the
caller keeps their sum within a budget), plus the one row group being written.

Row groups are written on a background thread: Arrow encodes and compresses without holding
the GIL, so that work overlaps with the conversion of the next pages. One row group is written
at a time, so a writer's files keep their order; its errors surface at its next call.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..timefmt import iso_ms
from .layout import PartitionPath
from .schema import TableSchema
from .storage import Storage

log = logging.getLogger(__name__)
FORMATS = {"parquet": ".parquet", "jsonl": ".jsonl.gz"}


@dataclass
class FileInfo:
    key: str
    rows: int
    bytes: int
    min_created: str | None
    max_created: str | None
    min_pagination_key: str | None
    max_pagination_key: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stats:
    """Running min/max of the columns a manifest records per file."""

    def __init__(self) -> None:
        self.rows = 0
        self.created: list[Any] = [None, None]
        self.pk: list[Any] = [None, None]

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        for column, bounds in (("created", self.created), ("_pagination_key", self.pk)):
            if column not in batch.schema.names:  # catalogs have no pagination key
                continue
            found = pc.min_max(batch.column(column))
            lo, hi = found["min"].as_py(), found["max"].as_py()
            if lo is not None:
                bounds[0] = lo if bounds[0] is None else min(bounds[0], lo)
                bounds[1] = hi if bounds[1] is None else max(bounds[1], hi)


class _Sink(ABC):
    """One open file of a format."""

    def __init__(self, path: Path, schema: TableSchema):
        self.path = path
        self.schema = schema

    @abstractmethod
    def write(self, table: pa.Table) -> None: ...

    @abstractmethod
    def size(self) -> int:
        """Bytes written so far: files roll at the size target."""

    @abstractmethod
    def close(self) -> None: ...


class _ParquetSink(_Sink):
    def __init__(self, path: Path, schema: TableSchema):
        super().__init__(path, schema)
        self.file = pa.OSFile(str(path), "wb")
        self.writer = pq.ParquetWriter(self.file, schema.arrow, compression="zstd", write_statistics=True)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=table.num_rows)

    def size(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.writer.close()
        self.file.close()


class _JsonlSink(_Sink):
    """JSON lines, gzip at level 1: most of the gain for a fraction of level 6's time."""

    def __init__(self, path: Path, schema: TableSchema):
        super().__init__(path, schema)
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
        self.timestamps = [c.name for c in schema.columns if c.kind == "timestamp"]
        self.maps = [c.name for c in schema.columns if c.kind == "number_map"]

    def write(self, table: pa.Table) -> None:
        for batch in table.to_batches(max_chunksize=2000):  # Python objects for 2,000 rows at a time, at most
            lines = []
            for row in batch.to_pylist():
                for name in self.timestamps:
                    if row[name] is not None:
                        row[name] = iso_ms(row[name])
                for name in self.maps:
                    if row[name] is not None:
                        row[name] = dict(row[name])
                lines.append(orjson.dumps(row))
            self.file.write(self.deflate.compress(b"\n".join(lines) + b"\n"))

    def size(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.write(self.deflate.flush())
        self.file.close()


_SINKS: dict[str, type[_Sink]] = {"parquet": _ParquetSink, "jsonl": _JsonlSink}


class _Background:
    """One thread for every writer in the process, at most `limit` row groups in its hands."""

    def __init__(self, limit: int = 1):
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        """A fresh start: a forked child has this object, but not the parent's thread."""
        self.slots = threading.BoundedSemaphore(self.limit)
        self.lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None

    def submit(self, job: Callable[[], None]) -> Future[None]:
        self.slots.acquire()
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bt-file-writer")
            try:
                future = self.pool.submit(job)
            except BaseException:
                self.slots.release()
                raise
        future.add_done_callback(lambda _: self.slots.release())
        return future


_BACKGROUND = _Background()
os.register_at_fork(after_in_child=_BACKGROUND.reset)


class PartitionWriter:
    """Rolling files for one partition; `close()` stores them and says what was written."""

    def __init__(self, storage: Storage, partition: PartitionPath, schema: TableSchema, fmt: str, spool: Path,
                 *, target_file_bytes: int = 256 * 1024 * 1024, row_group_rows: int = 20_000,
                 buffer_bytes: int = 24 * 1024 * 1024):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use parquet or jsonl")
        self.storage, self.partition, self.schema, self.fmt, self.spool = storage, partition, schema, fmt, spool
        self.target_file_bytes = target_file_bytes
        self.row_group_rows = row_group_rows
        self.buffer_limit = buffer_bytes
        self.buffer: list[pa.RecordBatch] = []
        self.buffered_rows = 0
        self.buffered_bytes = 0
        self.sink: _Sink | None = None
        self.stats = _Stats()
        self.files: list[FileInfo] = []
        self.pending: Future[None] | None = None  # the row group being written

    def add(self, batch: pa.RecordBatch) -> None:
        if self.pending is not None and self.pending.done():
            self.wait()  # a failed write stops the export now, not after the whole read
        if batch.num_rows == 0:
            return
        self.buffer.append(batch)
        self.buffered_rows += batch.num_rows
        self.buffered_bytes += batch.nbytes
        if self.buffered_rows >= self.row_group_rows or self.buffered_bytes >= self.buffer_limit:
            self.flush()

    def flush(self) -> None:
        """Write the buffer to the current file, in row groups of at most `row_group_rows` rows,
        rolling files between row groups at the target size."""
        if not self.buffer:
            return
        table = pa.Table.from_batches(self.buffer, schema=self.schema.arrow)
        self.buffer, self.buffered_rows, self.buffered_bytes = [], 0, 0
        self.wait()
        self.pending = _BACKGROUND.submit(lambda: self._write_all(table))

    def wait(self) -> None:
        """Until this writer's row group is written; its error, if it failed."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def _write_all(self, table: pa.Table) -> None:
        for start in range(0, table.num_rows, self.row_group_rows):
            self._write(table.slice(start, self.row_group_rows))

    def _write(self, table: pa.Table) -> None:
        if self.sink is None:
            name = f"{uuid.uuid4()}{FORMATS[self.fmt]}"
            self.sink = _SINKS[self.fmt](self.spool / name, self.schema)
        self.sink.write(table)
        self.stats.add(table)
        if self.sink.size() >= self.target_file_bytes:
            self._finish_file()

    def _finish_file(self) -> None:
        sink, stats = self.sink, self.stats
        assert sink is not None
        sink.close()
        size = sink.path.stat().st_size
        key = self.partition.file_key(sink.path.name)
        self.storage.put_file(sink.path, key)
        self.files.append(FileInfo(
            key=key, rows=stats.rows, bytes=size,
            min_created=iso_ms(stats.created[0]) if stats.created[0] else None,
            max_created=iso_ms(stats.created[1]) if stats.created[1] else None,
            min_pagination_key=stats.pk[0], max_pagination_key=stats.pk[1]))
        self.sink, self.stats = None, _Stats()

    def close(self) -> list[FileInfo]:
        self.flush()
        self.wait()
        if self.sink is not None:
            self._finish_file()
        return self.files

    def discard(self) -> None:
        """A clean failure leaves the lake as it was: drop this writer's files, local and stored.

        Best effort for stored ones: they are orphans no manifest lists, and the partition's
        next commit deletes them anyway, so the original error is what the caller sees.
        """
        self.buffer = []
        interrupted: BaseException | None = None
        try:
            self.wait()
        except Exception:  # its error was reported, or the caller's error is the one to see
            pass
        except BaseException as exc:  # a second Ctrl-C while waiting: clean up all the same, then stop
            interrupted = exc
        if self.sink is not None:
            with suppress(Exception):  # the file goes either way
                self.sink.close()
            self.sink.path.unlink(missing_ok=True)
            self.sink = None
        try:
            self.storage.delete([f.key for f in self.files])
        except Exception:
            log.warning("could not remove uncommitted files of %s", self.partition.folder, exc_info=True)
        if interrupted is not None:
            raise interrupted


def keep_within_budget(writers: Iterable[PartitionWriter], budget: int) -> None:
    """Flush the fullest buffers until all open partitions' buffers fit in `budget` bytes together."""
    open_writers = list(writers)
    while sum(w.buffered_bytes for w in open_writers) > budget:
        max(open_writers, key=lambda w: w.buffered_bytes).flush()
