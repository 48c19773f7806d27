"""Read back the files the writers wrote, a batch at a time: copy-on-write rewrites start here."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import TableSchema, from_lake_rows

BATCH_ROWS = 5_000


def read_batches(path: Path, fmt: str, schema: TableSchema, columns: list[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The file's rows as batches of the table's schema (or of `columns` only)."""
    if fmt == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
            yield batch
        return
    with gzip.open(path, "rb") as lines:
        while chunk := list(islice(lines, batch_rows)):
            batch = from_lake_rows(schema, [orjson.loads(line) for line in chunk])
            yield batch.select(columns) if columns else batch


def read_ids(path: Path, fmt: str, schema: TableSchema) -> pa.Array:
    """Every `id` in the file, in file order."""
    chunks = [b.column(0) for b in read_batches(path, fmt, schema, ["id"])]
    return pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
