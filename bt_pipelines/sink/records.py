"""A page of the API's JSON lines, decoded in one pass into typed records.

Decoding every row into Python dicts and lists, only to write its `input`, `output` and
`metadata` back out as JSON text, was half of the export's CPU. A `Record` keeps each free-form
value as the API's own JSON text (`msgspec.Raw`, never decoded), and checks the typed columns'
values as it decodes. A page with a value the schema does not expect (a number where a string
belongs, a bool among scores, a lone surrogate, bytes that are not UTF-8) is decoded into dicts
instead, and the general conversion cleans it: both ways end in the same Arrow batch.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .schema import DATASETS, EXPERIMENTS, PROJECT_LOGS, TRACE_SUMMARIES

# What the decoder accepts for each kind of column; anything else sends the page to the dicts.
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
    return getattr(self, key)


NULL_TEXT = "null"
# A missing key is None, or for a free-form column the text `null`, like a JSON null.
_MISSING = {"json": msgspec.Raw(NULL_TEXT.encode())}
Record = msgspec.defstruct("Record", [(name, _DECODED[kind], _MISSING.get(kind)) for name, kind in KINDS.items()],
                           gc=False, namespace={"__getitem__": _getitem, "__module__": __name__})
_DECODER = msgspec.json.Decoder(Record)


class UntypedPage(ValueError):
    """A value in the page does not fit its column's type: decode the page as dicts."""


def decode_records(body: bytes) -> list[Any]:
    """The page's rows as `Record`s."""
    try:
        body.decode()  # Raw values are not checked for UTF-8, and the lake must not get invalid text
        return _DECODER.decode_lines(body)
    except (UnicodeDecodeError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise UntypedPage(str(exc)) from exc
