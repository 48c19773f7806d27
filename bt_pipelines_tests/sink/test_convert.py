"""A page gives the same Arrow batch whether its rows are decoded as typed records or as dicts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt_pipelines.engine.routing import page_rows
from bt_pipelines.sink.convert import to_batch
from bt_pipelines.sink.records import FIELDS, KINDS, Record, UntypedPage, decode_records
from bt_pipelines.sink.schema import DATASETS, EXPERIMENTS, PROJECT_LOGS, TRACE_SUMMARIES
from bt_pipelines.source.reader import json_lines

PAGE_TABLES = [PROJECT_LOGS, EXPERIMENTS, DATASETS, TRACE_SUMMARIES]

_text = st.text(max_size=12)  # orjson, like the API, writes integers of 64 bits at most
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_timestamp = st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z")
_xact = st.integers(0, 2**62).map(str)
# What each kind of column holds, and what it should not (but may, now and then).
_FITTING = {
    "string": st.none() | _text,
    "bool": st.none() | st.booleans(),
    "timestamp": st.none() | _timestamp,
    "xact": st.none() | _xact,
    "number_map": st.none() | st.dictionaries(_text, st.none() | st.floats(-1e9, 1e9) | st.integers(-1000, 1000),
                                              max_size=4),
    "string_list": st.none() | st.lists(_text, max_size=3),
    "json": _json,
}
_ODD = {
    "string": st.integers(-(2**63), 2**63 - 1) | st.lists(_text, max_size=2),
    "bool": st.sampled_from([0, 1, "true"]),
    "timestamp": st.none(),
    "xact": st.integers(0, 2**62),
    "number_map": st.dictionaries(_text, st.booleans() | _text | st.integers(2**60, 2**63 - 1), min_size=1, max_size=3)
                  | _text,
    "string_list": st.lists(st.none() | st.integers(-5, 5) | _text, min_size=1, max_size=3) | _text,
    "json": _json,
}


_row = st.fixed_dictionaries(
    {"id": _text, "created": _timestamp, "_xact_id": _xact},
    optional={name: _FITTING[kind] for name, kind in KINDS.items() if name not in ("id", "created", "_xact_id")}
    | {"unknown_key": _json},
)
_odd = st.sampled_from(sorted(KINDS.items())).flatmap(lambda field: st.tuples(st.just(field[0]), _ODD[field[1]]))


def _body(rows: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(row) for row in rows)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=6), odd=st.none() | _odd, table=st.sampled_from(PAGE_TABLES))
def test_records_and_dicts_give_the_same_batch(rows, odd, table):
    if odd:
        rows[-1][odd[0]] = odd[1]
    body = _body(rows)
    decoded = page_rows(body)
    if odd is None:  # every value fits its column: the fast path is taken
        assert all(type(row) is Record for row in decoded)
    assert to_batch(table, decoded).equals(to_batch(table, json_lines(body)))


def test_a_page_of_the_usual_types_is_decoded_as_records():
    row = {"id": "a", "created": "2026-01-01T00:00:00.000Z", "_xact_id": "7", "input": {"q": [1, "x"]},
           "scores": {"s": 1, "t": None}, "tags": ["t"], "span_attributes": {"name": "n", "type": "llm"},
           "metadata": None}
    records = page_rows(_body([row, row | {"id": "b"}]))
    assert [type(r) for r in records] == [Record, Record]
    batch = to_batch(PROJECT_LOGS, records)
    assert batch.column("input").to_pylist() == ['{"q":[1,"x"]}'] * 2
    assert batch.column("metadata").null_count == 2  # JSON null and a missing key are both null
    assert batch.column("span_name").to_pylist() == ["n", "n"]
    assert dict(batch.column("scores")[0].as_py()) == {"s": 1.0, "t": None}


def test_records_held_from_a_page_and_the_next_page_of_dicts_give_the_same_batch():
    typed = _body([{"id": "a", "_xact_id": "1", "created": "2026-01-01T00:00:00.000Z", "input": {"deep": [[{}]]},
                    "span_attributes": {"name": "x"}}])
    odd = _body([{"id": "b", "_xact_id": "2", "created": "2026-01-01T00:00:01.000Z", "scores": {"s": True}}])
    joined = page_rows(typed) + page_rows(odd)
    assert [type(row) for row in joined] == [Record, dict]
    assert to_batch(PROJECT_LOGS, joined).equals(to_batch(PROJECT_LOGS, json_lines(typed + b"\n" + odd)))


@pytest.mark.parametrize("line", [b'{"id":"a","tags":["t",null]}', b'{"id":"a","scores":{"s":true}}', b'{"id":5}'],
                         ids=["null in a list", "bool score", "number id"])
def test_a_page_with_an_odd_value_is_decoded_as_dicts(line):
    with pytest.raises(UntypedPage):
        decode_records(line)
    assert all(type(row) is dict for row in page_rows(line))


@pytest.mark.parametrize("line", [b'{"id":"a","input":"\xff\xfe"}', b'{"id":"a","input":"\\ud800"}',
                                  b'{"id":"a","scores":{"s":1e400}}'],
                         ids=["not UTF-8", "lone surrogate", "number beyond a double"])
def test_a_page_no_json_decoder_accepts_is_refused_not_written(line):
    with pytest.raises(orjson.JSONDecodeError):
        page_rows(line)


def test_the_record_fields_cover_every_page_table_column():
    for table in PAGE_TABLES:
        assert {c.path[0] for c in table.columns} <= set(FIELDS)
