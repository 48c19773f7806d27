"""The lake's table schemas, and Braintrust rows -> Arrow batches.

The schema never drifts: scalars are typed, `scores`/`metrics` are maps to doubles, `tags`
and `span_parents` are string lists, and every free-form JSON value (`input`, `output`,
`metadata`, ...) is stored as JSON text, so new keys inside them never change a file's schema.
Bump SCHEMA_VERSION whenever a column is added, removed or retyped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

SCHEMA_VERSION = 1

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "xact": pa.int64(),
    "int": pa.int64(),
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

    @cached_property
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

_OWNERS = (Column("org_id", "string"), Column("log_id", "string"), Column("experiment_id", "string"),
           Column("dataset_id", "string"), Column("span_type_info", "json"))
_POOL = {c.name: c for c in (*_IDS, *_SPAN_BODY, *_OWNERS)}


def _pick(*names: str, **docs: str) -> tuple[Column, ...]:
    """Columns of the shared definitions, in this order, with a doc of their own where given."""
    return tuple(replace(_POOL[n], doc=docs[n]) if n in docs else _POOL[n] for n in names)


PROJECT_LOGS = TableSchema("project_logs", (*_IDS, *_pick("org_id", "log_id"), *_SPAN_BODY))
EXPERIMENTS = TableSchema("experiments", (*_IDS, *_pick("experiment_id"), *_SPAN_BODY))
DATASETS = TableSchema("datasets", _pick(
    "id", "created", "_xact_id", "_pagination_key", "dataset_id", "project_id", "input", "expected", "metadata",
    "tags", "origin", "span_id", "root_span_id", "is_root", "comments", "audit_data", "facets", "classifications",
    id="the record's id", created="when the record was first written (UTC)",
    _xact_id="transaction id of the record's latest write", _pagination_key=""))
TRACE_SUMMARIES = TableSchema("project_logs_traces", _pick(
    "id", "span_id", "root_span_id", "created", "_xact_id", "_pagination_key", "project_id", "org_id", "log_id",
    "span_name", "span_type", "input", "output", "expected", "error", "metadata", "scores", "metrics", "tags",
    "span_attributes", "span_type_info", "comments", "origin",
    id="the root span's row id: one row per trace", root_span_id="",
    created="the root span's created; decides the date partition",
    _xact_id="the newest _xact_id of any span in the trace", _pagination_key="",
    span_name="the root span's name", span_type="the root span's type", input="the root span's input, whole",
    scores="each score averaged over the trace's spans",
    metrics="summed tokens and cost, llm_calls, tool_calls, errors, start, end, duration"))
EXPERIMENTS_CATALOG = TableSchema("experiments_catalog", (
    Column("id", "string"),
    Column("name", "string"),
    Column("project_id", "string"),
    Column("created", "timestamp"),
    Column("description", "string"),
    Column("base_exp_id", "string", doc="the experiment this one compares against"),
    Column("dataset_id", "string"),
    Column("dataset_version", "string"),
    Column("commit", "string", doc="the git commit the experiment ran on"),
    Column("repo_info", "json"),
    Column("metadata", "json"),
    Column("tags", "string_list"),
    Column("public", "bool"),
    Column("user_id", "string"),
    Column("scores", "number_map", doc="the experiment's score summary (mean of each score)"),
    Column("rows", "int", doc="rows in the experiment"),
    Column("_xact_id", "xact", doc="the experiment's newest _xact_id"),
    Column("lake_key", "string", doc="its partition key and folder: experiment=<lake_key>"),
))
DATASETS_CATALOG = TableSchema("datasets_catalog", (
    Column("id", "string"),
    Column("name", "string"),
    Column("project_id", "string"),
    Column("created", "timestamp"),
    Column("description", "string"),
    Column("metadata", "json"),
    Column("tags", "string_list"),
    Column("user_id", "string"),
    Column("rows", "int", doc="records in the dataset"),
    Column("_xact_id", "xact", doc="the dataset's version: its newest _xact_id"),
    Column("lake_key", "string", doc="its partition key and folder: dataset=<lake_key>"),
))
SCHEMAS = {s.table: s for s in (PROJECT_LOGS, EXPERIMENTS, DATASETS, TRACE_SUMMARIES, EXPERIMENTS_CATALOG,
                                 DATASETS_CATALOG)}


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
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


_EXACT = 2**53  # larger ints are not exact doubles: Arrow refuses them, so they are converted


def _clean_number_map(value: dict[str, Any]) -> dict[str, float | None]:
    return {str(k): _number(v) for k, v in value.items() if v is None or _number(v) is not None}


def _number_maps(values: Sequence[Any]) -> list[Any]:
    """Dicts of finite numbers pass through as they are (Arrow reads dicts); others are cleaned."""
    out = []
    for value in values:
        if not isinstance(value, dict):
            out.append(None)
        elif all(type(v) is float and math.isfinite(v) or type(v) is int and -_EXACT <= v <= _EXACT
                 for v in value.values()):
            out.append(value)
        else:
            out.append(_clean_number_map(value))
    return out


_NUMBERS_OR_NULL = frozenset({int, float, type(None)})


def _number_map_array(values: Sequence[Any]) -> pa.Array:
    """Dicts of numbers straight to Arrow; a NaN, an infinity, a bool or a huge int takes the
    cleaning path (`_number_maps`) instead."""
    if all(v is None or type(v) is dict and set(map(type, v.values())) <= _NUMBERS_OR_NULL for v in values):
        try:
            maps = pa.array(values, _TYPES["number_map"])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # an int beyond 2**53
            pass
        else:
            if pc.all(pc.is_finite(maps.items)).as_py() is not False:
                return maps
    return pa.array(_number_maps(values), _TYPES["number_map"])


def _string_lists(values: Sequence[Any]) -> list[Any]:
    out = []
    for value in values:
        if not isinstance(value, list):
            out.append(None)
        elif all(type(v) is str for v in value):
            out.append(value)
        else:
            out.append([v if isinstance(v, str) else orjson.dumps(v).decode() for v in value])
    return out


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested deeper than orjson goes (254 levels): the stdlib has no limit here
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _json_texts(values: Sequence[Any]) -> pa.Array:
    """JSON text without decoding to str in Python: Arrow checks the UTF-8 as it casts."""
    dumps = orjson.dumps
    try:
        texts = [None if v is None else dumps(v) for v in values]
    except orjson.JSONEncodeError:
        texts = [None if v is None else _dumps(v) for v in values]
    return pa.array(texts, pa.binary()).cast(pa.string())


def _strings(values: Sequence[Any]) -> Sequence[Any]:
    if all(type(v) is str or v is None for v in values):
        return values
    return [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values]


def _string_array(values: Sequence[Any]) -> pa.Array:
    """Strings as they are (Arrow refuses anything else, which is then written as JSON text)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(_strings(values), pa.string())


def _string_list_array(values: Sequence[Any]) -> pa.Array:
    """Lists of strings as they are; anything else is cleaned by `_string_lists`."""
    if all(type(v) is list or v is None for v in values):  # Arrow would split a lone string into characters
        try:
            lists = pa.array(values, _TYPES["string_list"])
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        else:
            if lists.values.null_count == 0:  # a null inside a list is written as the text "null"
                return lists
    return pa.array(_string_lists(values), _TYPES["string_list"])


def _array(kind: str, values: Sequence[Any]) -> pa.Array:
    if kind == "json":
        return _json_texts(values)
    if kind == "timestamp":
        return pa.array(values, pa.string()).cast(_TYPES["timestamp"])
    if kind in ("xact", "int"):  # _xact_id comes as digit strings; Arrow parses them
        return pa.array(_strings([None if v is None else str(v) for v in values]), pa.string()).cast(pa.int64())
    if kind == "string":
        return _string_array(values)
    if kind == "string_list":
        return _string_list_array(values)
    if kind == "number_map":
        return _number_map_array(values)
    return pa.array(values, _TYPES[kind])


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, ...]] | None:
    """Every key's values in one C-level pass, when all rows have the same keys in the same order
    (as the API sends them); None otherwise. About a third of the conversion's time otherwise."""
    if not rows:
        return None
    keys = tuple(rows[0])
    if not all(tuple(row) == keys for row in rows):
        return None
    return dict(zip(keys, zip(*[row.values() for row in rows], strict=True), strict=True))


def to_batch(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Rows as Braintrust returns them -> one Arrow batch of the table's schema."""
    columns = _columns(rows)
    arrays = []
    for column in schema.columns:
        path = column.path
        if len(path) == 1:
            key = path[0]
            if columns is None:
                values: Sequence[Any] = [row.get(key) for row in rows]
            else:
                values = columns[key] if key in columns else [None] * len(rows)
        else:
            values = [_get(row, path) for row in rows]
        arrays.append(_array(column.kind, values))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)


def from_lake_rows(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Rows read back from a JSONL file of the lake (JSON columns already text) -> one Arrow batch."""
    arrays = []
    for column in schema.columns:
        values = [row.get(column.name) for row in rows]
        kind = "string" if column.kind == "json" else column.kind
        arrays.append(_array(kind, values))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)
