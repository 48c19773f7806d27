"""Braintrust rows -> Arrow batches of a table's schema.

Rows come as records (`records.py`: decoded from the API's JSON lines, free-form values still
the API's JSON text) or as plain dicts (rows built from whole traces, rows read back from the
lake, a page msgspec could not decode). Typed columns are cleaned the same way for both.
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

from .records import FIELDS, KINDS, NULL_TEXT, LooseRecord, Record, json_value
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


def _parsed(values: Sequence[Any], kind: str, column: str) -> pa.Array:
    """Timestamps (ISO-8601 text) and whole numbers (digits, or ints) parsed by Arrow; a value
    that is neither fails the page with its column named: a row that cannot be placed is no row
    to guess about."""
    if kind == "timestamp":
        texts = values
    else:  # _xact_id comes as digit strings
        texts = [v if v is None or type(v) is str or type(v) is bool else str(v) for v in values]
    try:
        return pa.array(texts, pa.string()).cast(ARROW_TYPES[kind])
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        what = "an ISO-8601 timestamp" if kind == "timestamp" else "a whole number"
        for value in (v for v in values if v is not None):
            try:
                pa.array([value if kind == "timestamp" else str(value)], pa.string()).cast(ARROW_TYPES[kind])
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                raise ValueError(f"Braintrust sent {column or kind}={value!r}, which is not {what}") from None
        raise


def _array(kind: str, values: Sequence[Any], column: str = "") -> pa.Array:
    if kind == "json":
        return _json_texts(values)
    if kind in ("timestamp", "xact", "int"):
        return _parsed(values, kind, column)
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
    kinds = set(map(type, rows))
    if kinds <= {Record, LooseRecord} and rows:
        return _record_batch(schema, rows, typed=kinds == {Record})
    return _dict_batch(schema, [row if type(row) is dict else _as_dict(row) for row in rows])


def _as_dict(record: Any) -> dict[str, Any]:
    """A record as a dict (a page decoded as records joined to one msgspec could not decode)."""
    return {name: json_value(value) if KINDS[name] == "json" else value
            for name, value in zip(FIELDS, msgspec.structs.astuple(record), strict=True)}


def _record_batch(schema: TableSchema, records: Sequence[Any], *, typed: bool) -> pa.RecordBatch:
    """Free-form columns are the API's JSON text as it came. `typed`: every record is a `Record`,
    whose values are checked already (JSON has no NaN: its maps hold finite floats), so they go
    straight to Arrow; otherwise they are cleaned as dict rows' values are."""
    columns = dict(zip(FIELDS, zip(*map(msgspec.structs.astuple, records), strict=True), strict=True))
    decoded: dict[str, list[Any]] = {}  # free-form values a nested column reads, decoded once
    arrays = []
    for column in schema.columns:
        key, kind = column.path[0], column.kind
        if len(column.path) > 1:
            if key not in decoded:
                decoded[key] = [json_value(v) for v in columns[key]]
            arrays.append(_array(kind, [_get(v, column.path[1:]) for v in decoded[key]], column.name))
        elif kind == "json":
            arrays.append(_raw_texts(columns[key], column.name))
        elif typed and kind in ("string", "string_list", "bool", "number_map"):
            arrays.append(pa.array(columns[key], ARROW_TYPES[kind]))
        else:
            arrays.append(_array(kind, columns[key], column.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)


def _raw_texts(values: Sequence[msgspec.Raw], column: str) -> pa.Array:
    """The API's JSON texts as they came, in one join: no Python string per value. The text
    `null` is a null."""
    count = len(values)
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, count), out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError(f"one page's {column!r} values hold over 2 GB of JSON; lower page_size")
    buffers = [pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(values))]
    present = pc.not_equal(pa.Array.from_buffers(pa.string(), count, [None, *buffers]), NULL_TEXT)
    return pa.Array.from_buffers(pa.string(), count, [present.buffers()[1], *buffers])


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
        arrays.append(_array(column.kind, values, column.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)


def from_lake_rows(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Rows read back from a JSONL file of the lake (JSON columns already text) -> one Arrow batch."""
    arrays = []
    for column in schema.columns:
        values = [row.get(column.name) for row in rows]
        kind = "string" if column.kind == "json" else column.kind
        arrays.append(_array(kind, values, column.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)
