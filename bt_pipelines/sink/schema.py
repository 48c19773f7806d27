"""The lake's table schemas, and Braintrust rows -> Arrow batches.

The schema never drifts: scalars are typed, `scores`/`metrics` are maps to doubles, `tags`
and `span_parents` are string lists, and every free-form JSON value (`input`, `output`,
`metadata`, ...) is stored as JSON text, so new keys inside them never change a file's schema.
Bump SCHEMA_VERSION whenever a column is added, removed or retyped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

SCHEMA_VERSION = 1

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "xact": pa.int64(),
    "json": pa.string(),
    "number_map": pa.map_(pa.string(), pa.float64()),
    "string_list": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # a key of _TYPES
    source: tuple[str, ...] | None = None  # where in the row it comes from (default: its name)
    doc: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return self.source or (self.name,)


@dataclass(frozen=True)
class TableSchema:
    table: str
    columns: tuple[Column, ...]

    @property
    def arrow(self) -> pa.Schema:
        fields = [pa.field(c.name, _TYPES[c.kind], nullable=c.name != "id") for c in self.columns]
        return pa.schema(fields, metadata={"bt_pipelines.table": self.table,
                                           "bt_pipelines.schema_version": str(SCHEMA_VERSION)})


_IDS = (
    Column("id", "string", doc="the row's id; unique within a partition"),
    Column("span_id", "string"),
    Column("root_span_id", "string", doc="the trace this span belongs to"),
    Column("span_parents", "string_list", doc="parent span ids; null on a root span"),
    Column("is_root", "bool"),
    Column("created", "timestamp", doc="when the row was first written (UTC); decides its date partition"),
    Column("_xact_id", "xact", doc="transaction id of the row's latest write"),
    Column("_pagination_key", "string", doc="Braintrust's stable, time-ordered row key"),
    Column("project_id", "string"),
)
_SPAN_BODY = (
    Column("span_name", "string", ("span_attributes", "name"), doc="span_attributes.name, for convenience"),
    Column("span_type", "string", ("span_attributes", "type"), doc="span_attributes.type: llm, task, tool, score..."),
    Column("input", "json"),
    Column("output", "json"),
    Column("expected", "json"),
    Column("error", "json"),
    Column("metadata", "json"),
    Column("scores", "number_map", doc="score name -> value in [0, 1] (null when unset)"),
    Column("metrics", "number_map", doc="numeric metrics: tokens, cost, start/end (unix seconds)..."),
    Column("tags", "string_list"),
    Column("span_attributes", "json"),
    Column("context", "json"),
    Column("origin", "json"),
    Column("comments", "json"),
    Column("audit_data", "json"),
    Column("facets", "json"),
    Column("classifications", "json"),
    Column("_async_scoring_state", "json"),
)

PROJECT_LOGS = TableSchema("project_logs", (*_IDS, Column("org_id", "string"), Column("log_id", "string"), *_SPAN_BODY))
SCHEMAS = {s.table: s for s in (PROJECT_LOGS,)}


def _get(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _number_map(value: Any) -> dict[str, float | None] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): _number(v) for k, v in value.items() if v is None or _number(v) is not None}


def _string_list(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _json(value)


def _xact(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "string": _string, "bool": _bool, "json": _json, "number_map": _number_map,
    "string_list": _string_list, "xact": _xact,
}


def to_batch(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Rows as Braintrust returns them -> one Arrow batch of the table's schema."""
    arrays = []
    for column in schema.columns:
        path, kind = column.path, column.kind
        if len(path) == 1:
            key = path[0]
            values = [row.get(key) for row in rows]
        else:
            values = [_get(row, path) for row in rows]
        if kind == "timestamp":
            arrays.append(pa.array(values, pa.string()).cast(_TYPES["timestamp"]))
            continue
        convert = _CONVERT[kind]
        arrays.append(pa.array([convert(v) for v in values], _TYPES[kind]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)
