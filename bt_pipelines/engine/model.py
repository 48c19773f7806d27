"""What an export is asked to do, and what it reports: shared by full and incremental refreshes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ..sink.layout import PartitionPath
from ..sink.manifest import Manifest
from ..sink.schema import TableSchema
from ..source import queries

if TYPE_CHECKING:
    from ..sink.writers import FileInfo
    from ..source.reader import ReadStats

Progress = Callable[[dict[str, Any]], None]  # called every few pages with pages, rows, rows/s, retries, day


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

    def manifest(self, path: PartitionPath, files: list[FileInfo], watermark: str | None,
                 options: ExportOptions) -> Manifest:
        """What a read of this target at `watermark` commits for `path`."""
        return Manifest(table=self.table, partition=dict(path.keys), format=options.format, watermark=watermark,
                        files=files, source=self.source(), query=self.describe_query(), run_id=options.run_id)

    def describe_query(self) -> str:
        """What the manifest records as the query: the source, shape and filter (never a secret)."""
        parts = [f"from: {queries.source(self.source_kind, self.object_id, self.shape)}"]
        if self.filter:
            parts.append(f"filter: {self.filter}")
        if self.whole_traces:
            parts.append("whole traces")
        return " | ".join(parts)

    @property
    def incremental(self) -> bool:
        """Whether changed rows can be read on their own: not for rows derived from whole traces."""
        return self.shape == "spans" and not self.whole_traces

    @property
    def changes_shape(self) -> str:
        """The row shape whose changes tell which days to refresh: trace-derived rows follow traces."""
        return "spans" if self.incremental else "summary"


MAX_READ_STREAMS = 8


@dataclass
class ExportOptions:
    format: str = "parquet"
    target_file_bytes: int = 256 * 1024 * 1024
    row_group_rows: int = 20_000  # files roll between row groups
    page_size: int = 1000
    prefetch: int = 2
    read_streams: int = 2  # readers at once over contiguous runs of days (sync.split_days)
    buffer_budget_bytes: int = 16 * 1024 * 1024  # all open partitions' buffers together (row groups are cut at it)
    run_id: str | None = None
    progress_every_pages: int = 20
    full_refresh: bool = False  # re-read every unit whole, even one an incremental refresh could update
    reconcile: bool = False  # also check units with nothing new against the source's count; read whole if they differ
    max_small_files: int = 8  # a folder with more small files than this has them merged into one

    def __post_init__(self) -> None:
        if type(self.read_streams) is not int or not 1 <= self.read_streams <= MAX_READ_STREAMS:
            raise ValueError(f"read_streams must be a whole number from 1 to {MAX_READ_STREAMS}, "
                             f"not {self.read_streams!r}")


@dataclass
class PartitionResult:
    day: date | None  # None for a whole-object unit
    path: PartitionPath
    manifest: Manifest
    uri: str
    removed: list[str]
    mode: str = "full"  # full | incremental | unchanged
    rows_changed: int = 0  # rows added, replaced or removed (a full refresh: every row)


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
    files_rewritten: int = 0  # copy-on-write: files replaced because they held a changed row
    files_compacted: int = 0  # small files merged into bigger ones
    reconciled: list[str] = field(default_factory=list)  # units found different from the source, then read whole

    @property
    def rows_written(self) -> int:
        return sum(p.manifest.rows for p in self.partitions)

    @property
    def rows_changed(self) -> int:
        return sum(p.rows_changed for p in self.partitions)

    def add_read(self, stats: ReadStats) -> None:
        """Count one finished read's pages in this result."""
        self.pages += stats.pages
        self.heavy_pages += stats.heavy_pages
        self.stale_replaced += stats.stale_replaced

    def modes(self) -> str:
        """How the partitions were brought up to date: `2 incremental, 1 unchanged`."""
        counts = {mode: sum(p.mode == mode for p in self.partitions) for mode in ("full", "incremental", "unchanged")}
        return ", ".join(f"{n} {mode}" for mode, n in counts.items() if n)

    def add(self, other: ExportResult) -> None:
        """Fold another export's result into this one (a run of several objects reports one total)."""
        for name in (f.name for f in fields(self)):
            if name == "watermark":
                self.watermark = max(filter(None, [self.watermark, other.watermark]), default=None, key=int)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def progress(self, pages: int, started: float, retries: int, day: str | None) -> dict[str, Any]:
        """What `Progress` callbacks get."""
        elapsed = max(time.perf_counter() - started, 1e-9)
        return {"pages": pages, "rows": self.rows_read, "rows_per_s": self.rows_read / elapsed, "retries": retries,
                "current_day": day}
