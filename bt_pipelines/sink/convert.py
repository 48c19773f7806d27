"""Braintrust rows -> Arrow batches of a table's schema.

Two kinds of rows come in: `Record`s (`records.py`), decoded from the API's JSON lines with
their nested values still JSON text, and plain dicts (trace summaries built here, rows read
back from the lake, and any page the typed decoding refused). Both end as the same batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .records import FIELDS, KINDS, NULL_TEXT, Record
from .schema import ARROW_TYPES, TableSchema


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
            maps = pa.array(values, ARROW_TYPES["number_map"])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # an int beyond 2**53
            pass
        else:
            if pc.all(pc.is_finite(maps.items)).as_py() is not False:
                return maps
    return pa.array(_number_maps(values), ARROW_TYPES["number_map"])


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
            lists = pa.array(values, ARROW_TYPES["string_list"])
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        else:
            if lists.values.null_count == 0:  # a null inside a list is written as the text "null"
                return lists
    return pa.array(_string_lists(values), ARROW_TYPES["string_list"])


def _bool_array(values: Sequence[Any]) -> pa.Array:
    """Bools as they are; anything else (0, "true") is not a bool, and is left null."""
    try:
        return pa.array(values, pa.bool_())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([v if type(v) is bool else None for v in values], pa.bool_())


def _array(kind: str, values: Sequence[Any]) -> pa.Array:
    if kind == "json":
        return _json_texts(values)
    if kind == "timestamp":
        return pa.array(values, pa.string()).cast(ARROW_TYPES["timestamp"])
    if kind in ("xact", "int"):  # _xact_id comes as digit strings; Arrow parses them
        return pa.array(_strings([None if v is None else str(v) for v in values]), pa.string()).cast(pa.int64())
    if kind == "string":
        return _string_array(values)
    if kind == "string_list":
        return _string_list_array(values)
    if kind == "number_map":
        return _number_map_array(values)
    if kind == "bool":
        return _bool_array(values)
    return pa.array(values, ARROW_TYPES[kind])


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, ...]] | None:
    """Every key's values in one C-level pass, when all rows have the same keys in the same order
    (as the API sends them); None otherwise. About a third of the conversion's time otherwise."""
    if not rows:
        return None
    keys = tuple(rows[0])
    if not all(tuple(row) == keys for row in rows):
        return None
    return dict(zip(keys, zip(*[row.values() for row in rows], strict=True), strict=True))


def to_batch(schema: TableSchema, rows: Sequence[Any]) -> pa.RecordBatch:
    """Rows as Braintrust returns them (records or dicts) -> one Arrow batch of the table's schema."""
    if rows and all(type(row) is Record for row in rows):
        return _record_batch(schema, rows)
    return _dict_batch(schema, [row if type(row) is dict else _as_dict(row) for row in rows])


def _as_dict(record: Any) -> dict[str, Any]:
    """A record as the dict it was decoded from (a page of records joined to one of dicts)."""
    row = {}
    for name, value in zip(FIELDS, msgspec.structs.astuple(record), strict=True):
        row[name] = msgspec.json.decode(value) if KINDS[name] == "json" else value
    return row


def _record_batch(schema: TableSchema, records: Sequence[Any]) -> pa.RecordBatch:
    """Records' values are typed already: their columns go to Arrow without the dict path's checks."""
    columns = dict(zip(FIELDS, zip(*map(msgspec.structs.astuple, records), strict=True), strict=True))
    decoded: dict[str, list[Any]] = {}  # free-form values a nested column reads, decoded once
    arrays = []
    for column in schema.columns:
        key, kind = column.path[0], column.kind
        if len(column.path) > 1:
            if key not in decoded:
                decoded[key] = [msgspec.json.decode(v) for v in columns[key]]
            arrays.append(_array(kind, [_get(v, column.path[1:]) for v in decoded[key]]))
        elif kind == "json":
            arrays.append(_raw_texts(columns[key]))
        elif kind in ("string", "string_list", "bool", "number_map"):  # JSON has no NaN: maps hold finite floats
            arrays.append(pa.array(columns[key], ARROW_TYPES[kind]))
        else:
            arrays.append(_array(kind, columns[key]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)


def _raw_texts(values: Sequence[msgspec.Raw]) -> pa.Array:
    """The API's JSON texts as they came, in one join: no Python string per value. The text
    `null` is a null."""
    count = len(values)
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, count), out=offsets[1:])
    kind = pa.string() if offsets[-1] < 2**31 else pa.large_string()
    buffers = [pa.py_buffer(offsets.astype(np.int32) if kind == pa.string() else offsets),
               pa.py_buffer(b"".join(values))]
    present = pc.not_equal(pa.Array.from_buffers(kind, count, [None, *buffers]), NULL_TEXT)
    texts = pa.Array.from_buffers(kind, count, [present.buffers()[1], *buffers])
    return texts if kind == pa.string() else texts.cast(pa.string())


def _dict_batch(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
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
