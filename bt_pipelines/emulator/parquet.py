"""`fmt: parquet` answers: scalar columns typed, JSON-valued columns as JSON text.

The real service's Parquet column types are not documented; this layout is the one a careful
client survives either way (it must already parse JSON text for free-form columns).
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

_STRING_COLUMNS = {"id", "span_id", "root_span_id", "_xact_id", "_pagination_key", "created",
                   "project_id", "experiment_id", "dataset_id", "org_id", "log_id"}


def _column_type(name: str) -> pa.DataType:
    if name == "is_root":
        return pa.bool_()
    return pa.string()


def _cell(name: str, value: Any) -> Any:
    if value is None or name == "is_root" or (name in _STRING_COLUMNS and isinstance(value, str)):
        return value
    return orjson.dumps(value).decode()


def rows_to_parquet(rows: list[bytes], columns: list[str], source_columns: tuple[str, ...] | None) -> bytes:
    names = list(source_columns) if source_columns else columns
    decoded = [orjson.loads(r) for r in rows]
    if source_columns:
        schema = pa.schema([(n, _column_type(n)) for n in names])
        arrays = [pa.array([_cell(n, r.get(n)) for r in decoded], type=schema.field(n).type) for n in names]
        table = pa.Table.from_arrays(arrays, schema=schema)
    else:
        table = pa.Table.from_pylist(
            [{n: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v)
              for n, v in ((n, r.get(n)) for n in names)} for r in decoded]
        ) if decoded else pa.table({n: pa.array([], pa.string()) for n in names})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
