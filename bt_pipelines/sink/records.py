"""A page of the API's JSON lines, decoded in one pass into records.

Decoding every row into Python dicts and lists, only to write its `input`, `output` and
`metadata` back out as JSON text, was half of the export's CPU. A record keeps each free-form
value as the API's own JSON text (`msgspec.Raw`, never decoded), so the lake stores that text
as it came. A `Record` also checks the typed columns' values as it decodes, and goes to Arrow
without further checks. A page with a value its column does not expect (a number where a
string belongs, a bool among scores) is decoded into `LooseRecord`s instead: the same free-form
text, typed values as they came, for the conversion to clean. A page neither takes (bytes that
are not UTF-8, a lone surrogate, nesting ~1000 levels deep) is `UndecodablePage`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .schema import DATASETS, EXPERIMENTS, PROJECT_LOGS, TRACE_SUMMARIES

# What a `Record` accepts for each kind of column; anything else makes the page's rows `LooseRecord`s.
_DECODED: dict[str, Any] = {
    "string": str | None,
    "bool": bool | None,
    "timestamp": str | None,
    "xact": str | None,
    "number_map": dict[str, float | None] | None,
    "string_list": list[str] | None,
    "json": msgspec.Raw,
}


def _fields() -> dict[str, str]:
    """Each top-level key the page tables read, with its kind (a key read for a nested path,
    like `span_attributes.name`, stays JSON text)."""
    fields: dict[str, str] = {}
    for schema in (PROJECT_LOGS, EXPERIMENTS, DATASETS, TRACE_SUMMARIES):
        for column in schema.columns:
            kind = column.kind if len(column.path) == 1 else "json"
            if fields.setdefault(column.path[0], kind) != kind:
                raise TypeError(f"{column.path[0]!r} is read as {fields[column.path[0]]} and as {kind}")
    return fields


KINDS = _fields()
FIELDS = tuple(KINDS)


def _getitem(self: Any, key: str) -> Any:
    """`record[key]`, as for a dict row: the reader and the routing read ids and keys this way."""
    try:
        return getattr(self, key)
    except AttributeError:
        raise KeyError(key) from None


NULL_TEXT = "null"
# A missing key is None, or for a free-form column the text `null`, like a JSON null.
_MISSING = {"json": msgspec.Raw(NULL_TEXT.encode())}


def _record_type(name: str, typed: bool) -> type:
    fields = [(f, _DECODED[kind] if typed or kind == "json" else Any, _MISSING.get(kind)) for f, kind in KINDS.items()]
    return msgspec.defstruct(name, fields, gc=False, namespace={"__getitem__": _getitem, "__module__": __name__})


Record = _record_type("Record", typed=True)
LooseRecord = _record_type("LooseRecord", typed=False)  # same fields, in the same order
_TYPED, _LOOSE = msgspec.json.Decoder(Record), msgspec.json.Decoder(LooseRecord)


class UndecodablePage(ValueError):
    """The page is not JSON lines msgspec can read (not UTF-8, a lone surrogate, too deep)."""


def decode_records(body: bytes) -> list[Any]:
    """The page's rows as `Record`s, or as `LooseRecord`s when a value does not fit its column."""
    try:
        body.decode()  # a full pass, because Raw values are not checked for UTF-8 and the lake must get valid text
        try:
            return _TYPED.decode_lines(body)
        except msgspec.ValidationError:
            return _LOOSE.decode_lines(body)
    except (UnicodeDecodeError, msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise UndecodablePage(str(exc)) from exc


def json_value(text: msgspec.Raw) -> Any:
    """A free-form value as Python (for the few columns read from inside one, like `span_attributes.name`)."""
    try:
        return msgspec.json.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # a number beyond a double, or deep
        try:
            return json.loads(bytes(text))
        except (ValueError, RecursionError):
            return None
