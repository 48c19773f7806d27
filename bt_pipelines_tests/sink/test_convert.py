"""Pages to Arrow: free-form values are stored as the API wrote them, every other column as the
general (dict) conversion makes it, whichever way a page was decoded."""

from __future__ import annotations

import json

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt_pipelines.engine.routing import page_rows
from bt_pipelines.sink.convert import to_batch
from bt_pipelines.sink.records import FIELDS, KINDS, LooseRecord, Record, UndecodablePage, decode_records
from bt_pipelines.sink.schema import DATASETS, EXPERIMENTS, PROJECT_LOGS, TRACE_SUMMARIES
from bt_pipelines.source.reader import json_lines

PAGE_TABLES = [PROJECT_LOGS, EXPERIMENTS, DATASETS, TRACE_SUMMARIES]

_text = st.text(max_size=12)
_json = st.recursive(  # integers of 64 bits at most: orjson, like the API, writes no larger ones
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_timestamp = st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z")
_xact = st.integers(0, 2**62).map(str)
_number = st.none() | st.floats(-1e9, 1e9) | st.integers(-1000, 1000) | st.integers(2**53, 2**63 - 1)
# What each kind of column holds...
_FITTING = {
    "string": st.none() | _text,
    "bool": st.none() | st.booleans(),
    "timestamp": st.none() | _timestamp,
    "xact": st.none() | _xact,
    "number_map": st.none() | st.dictionaries(_text, _number, max_size=4),
    "string_list": st.none() | st.lists(_text, max_size=3),
    "json": _json,
}
# ...and what it should not but is cleaned (free-form columns take anything; a `created` that is no
# timestamp fails the page, below).
_ODD = {
    "string": st.integers(-(2**63), 2**63 - 1) | st.lists(_text, max_size=2),
    "bool": st.sampled_from([0, 1, "true"]),
    "xact": st.integers(0, 2**62),
    "number_map": st.dictionaries(_text, st.booleans() | _text, min_size=1, max_size=3) | _text,
    "string_list": st.lists(st.none() | st.integers(-5, 5), min_size=1, max_size=3) | _text,
}
_row = st.fixed_dictionaries(
    {"id": _text, "created": _timestamp, "_xact_id": _xact},
    optional={name: _FITTING[kind] for name, kind in KINDS.items() if name not in ("id", "created", "_xact_id")}
    | {"unknown_key": _json},
)
_odd = st.sampled_from(sorted((n, k) for n, k in KINDS.items() if k in _ODD)).flatmap(
    lambda field: st.tuples(st.just(field[0]), _ODD[field[1]]))
# How an API may write JSON: compact as orjson does, or spaced with \u escapes.
_STYLES = {"compact": lambda value: orjson.dumps(value).decode(),
           "spaced, escaped": lambda value: json.dumps(value, ensure_ascii=True, separators=(", ", ": "))}


def _body(rows: list[dict], style: str = "compact") -> bytes:
    return "\n".join(map(_STYLES[style], rows)).encode()


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=6), odd=st.none() | _odd, table=st.sampled_from(PAGE_TABLES),
       style=st.sampled_from(sorted(_STYLES)))
def test_free_form_text_is_kept_and_other_columns_match_the_dict_conversion(rows, odd, table, style):
    if odd:
        rows[-1][odd[0]] = odd[1]
    body = _body(rows, style)
    decoded = page_rows(body)
    assert {type(row) for row in decoded} == {LooseRecord if odd else Record}
    batch, general = to_batch(table, decoded), to_batch(table, json_lines(body))
    for column in table.columns:
        stored = batch.column(column.name)
        if column.kind == "json" and len(column.path) == 1:
            written = [None if row.get(column.name) is None else _STYLES[style](row[column.name]) for row in rows]
            assert stored.to_pylist() == written, column.name
        else:
            assert stored.equals(general.column(column.name)), column.name


@settings(max_examples=100, deadline=None)
@given(fitting=st.lists(_row, min_size=1, max_size=4), other=st.lists(_row, min_size=1, max_size=4), odd=_odd)
def test_records_held_from_one_page_and_the_next_page_give_the_batches_of_both(fitting, other, odd):
    other[0][odd[0]] = odd[1]
    typed, loose = page_rows(_body(fitting)), page_rows(_body(other))
    assert {type(r) for r in typed} == {Record} and {type(r) for r in loose} == {LooseRecord}
    joined = to_batch(PROJECT_LOGS, typed + loose)
    assert pa.Table.from_batches([joined]).equals(
        pa.Table.from_batches([to_batch(PROJECT_LOGS, typed), to_batch(PROJECT_LOGS, loose)]))


def test_a_page_of_the_usual_types_is_decoded_as_records():
    row = {"id": "a", "created": "2026-01-01T00:00:00.000Z", "_xact_id": "7", "input": {"q": [1, "x"]},
           "scores": {"s": 1, "t": None}, "tags": ["t"], "span_attributes": {"name": "n", "type": "llm"},
           "metadata": None}
    records = page_rows(_body([row, row | {"id": "b"}]))
    assert [type(r) for r in records] == [Record, Record]
    assert records[0]["id"] == "a"
    with pytest.raises(KeyError):
        records[0]["no such column"]
    batch = to_batch(PROJECT_LOGS, records)
    assert batch.column("input").to_pylist() == ['{"q":[1,"x"]}'] * 2
    assert batch.column("metadata").null_count == 2  # JSON null and a missing key are both null
    assert batch.column("span_name").to_pylist() == ["n", "n"]
    assert dict(batch.column("scores")[0].as_py()) == {"s": 1.0, "t": None}


@pytest.mark.parametrize("line", [b'{"id":"a","tags":["t",null]}', b'{"id":"a","scores":{"s":true}}', b'{"id":5}'],
                         ids=["null in a list", "bool score", "number id"])
def test_a_page_with_an_odd_value_is_decoded_loosely(line):
    assert [type(row) for row in decode_records(line)] == [LooseRecord]


def test_a_free_form_number_beyond_a_double_is_kept_as_written():
    line = b'{"id":"a","_xact_id":"1","created":"2026-01-01T00:00:00.000Z","input":1e400,' \
           b'"span_attributes":{"name":"n","big":1e400}}'
    batch = to_batch(PROJECT_LOGS, page_rows(line))
    assert batch.column("input").to_pylist() == ["1e400"]
    assert batch.column("span_name").to_pylist() == ["n"]


@pytest.mark.parametrize("bad", [{"created": 0}, {"created": "yesterday"}, {"_xact_id": "abc"}],
                         ids=["number", "not a date", "xact not digits"])
def test_a_row_that_cannot_be_placed_fails_its_page_naming_the_value(bad):
    placed = {"id": "a", "created": "2026-01-01T00:00:00.000Z", "_xact_id": "1"}
    unplaced = {"id": "a", "created": None, "_xact_id": None}  # nulls come first: they are not what is wrong
    [(column, value)] = bad.items()
    with pytest.raises(ValueError, match=f"Braintrust sent {column}={value!r}, which is not"):
        to_batch(PROJECT_LOGS, page_rows(_body([unplaced, placed | bad])))


@pytest.mark.parametrize("line", [b'{"id":"a","input":"\xff\xfe"}', b'{"id":"a","input":"\\ud800"}',
                                  b'{"id":"a","scores":{"s":1e400}}'],
                         ids=["not UTF-8", "lone surrogate", "score beyond a double"])
def test_a_page_no_json_decoder_accepts_is_refused_not_written(line):
    with pytest.raises(UndecodablePage):
        decode_records(line)
    with pytest.raises(orjson.JSONDecodeError):
        page_rows(line)


def test_the_record_fields_cover_every_page_table_column():
    for table in PAGE_TABLES:
        assert {c.path[0] for c in table.columns} <= set(FIELDS)
