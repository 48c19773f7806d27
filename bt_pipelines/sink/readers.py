"""Read back the files the writers wrote, a batch at a time: copy-on-write rewrites start here."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .convert import from_lake_rows
from .schema import TableSchema

BATCH_ROWS = 5_000


def read_batches(path: Path, fmt: str, schema: TableSchema, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The file's rows as batches of the table's schema."""
    if fmt == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        return
    with gzip.open(path, "rb") as lines:
        while chunk := list(islice(lines, batch_rows)):
            yield from_lake_rows(schema, [orjson.loads(line) for line in chunk])


def read_ids(path: Path, fmt: str) -> pa.Array:
    """Every `id` in the file, in file order (Parquet reads that one column; JSON lines are not converted)."""
    if fmt == "parquet":
        return pq.read_table(path, columns=["id"]).column("id").combine_chunks()
    with gzip.open(path, "rb") as lines:
        return pa.array([orjson.loads(line)["id"] for line in lines], pa.string())


def read_schema(path: Path, fmt: str) -> pa.Schema | list[str]:
    """A Parquet file's schema (its footer only), or a JSONL file's first row's keys."""
    if fmt == "parquet":
        return pq.read_schema(path)
    with gzip.open(path, "rb") as lines:
        first = lines.readline()
    return list(orjson.loads(first)) if first.strip() else []
