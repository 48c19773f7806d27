"""The query engine, feature by feature, straight against a store (no HTTP)."""

from __future__ import annotations

import pytest

from bt_pipelines.emulator.btql import QueryError
from bt_pipelines.emulator.ids import format_ts, now_micros

from .helpers import log, run


@pytest.fixture
def spans(store, project):
    """Two traces: t1 (root + llm + tool with an error), t2 (root + llm), one span created 10 days ago."""
    old = format_ts(now_micros() - 10 * 86400 * 1_000_000)
    log(store, project,
        {"id": "t1-root", "span_id": "s1", "root_span_id": "t1", "created": "2026-05-01T10:00:00.000Z",
         "input": "q1", "output": "a1", "scores": {"acc": 1.0}, "tags": ["vip", "web"],
         "metadata": {"model": "m1", "user": {"id": "u1"}}, "span_attributes": {"type": "task", "name": "root"},
         "metrics": {"start": 100.0, "end": 110.0}},
        {"id": "t1-llm", "span_id": "s2", "root_span_id": "t1", "span_parents": ["s1"],
         "created": "2026-05-01T10:00:01.000Z", "scores": {"acc": 0.5},
         "metadata": {"model": "m1"}, "span_attributes": {"type": "llm", "name": "chat"},
         "metrics": {"start": 101.0, "end": 105.0, "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}},
        {"id": "t1-tool", "span_id": "s3", "root_span_id": "t1", "span_parents": ["s1"],
         "created": "2026-05-01T23:59:59.999Z", "error": "boom", "span_attributes": {"type": "tool", "name": "lookup"},
         "metrics": {"start": 105.0, "end": 108.0}},
        {"id": "t2-root", "span_id": "s4", "root_span_id": "t2", "created": "2026-05-02T00:00:00.000Z",
         "input": "q2" * 100, "scores": {"acc": 0.0}, "tags": ["web"], "metadata": {"model": "m2"},
         "span_attributes": {"type": "task", "name": "root"}},
        {"id": "t2-llm", "span_id": "s5", "root_span_id": "t2", "span_parents": ["s4"], "created": old,
         "metadata": {"model": "m2"}, "span_attributes": {"type": "llm", "name": "chat"},
         "metrics": {"prompt_tokens": 7, "total_tokens": 7}})
    return project


def ids(store, project, where: str, shape: str = "spans") -> list[str]:
    rows, _ = run(store, f"select: id | from: project_logs('{project}') {shape} | filter: {where} "
                         "| sort: id asc")
    return [r["id"] for r in rows]


@pytest.mark.parametrize("where, expected", [
    ("id = 't1-root'", ["t1-root"]),
    ("id != 't1-root' AND root_span_id = 't1'", ["t1-llm", "t1-tool"]),
    ("scores.acc >= 0.5", ["t1-llm", "t1-root"]),
    ("scores.acc < 0.5 OR error IS NOT NULL", ["t1-tool", "t2-root"]),
    ("NOT (metadata.model = 'm1')", ["t2-llm", "t2-root"]),
    ("metadata.model IN ['m2', 'm3']", ["t2-llm", "t2-root"]),
    ("metadata.model NOT IN ['m2']", ["t1-llm", "t1-root"]),
    ("metadata.user.id = 'u1'", ["t1-root"]),
    ("span_parents IS NULL", ["t1-root", "t2-root"]),
    ("is_root = true", ["t1-root", "t2-root"]),
    ("tags INCLUDES 'vip'", ["t1-root"]),
    ("span_attributes.name LIKE 'ro%'", ["t1-root", "t2-root"]),
    ("metrics.end - metrics.start > 3.5", ["t1-llm", "t1-root"]),
])
def test_filters(store, spans, where, expected):
    assert ids(store, spans, where) == expected


@pytest.mark.parametrize("where, expected", [
    ("created >= '2026-05-01' AND created < '2026-05-02'", ["t1-llm", "t1-root", "t1-tool"]),
    ("created >= '2026-05-02T00:00:00Z'", ["t2-llm", "t2-root"]),
    ("created > '2026-05-02T01:00:00+02:00'", ["t1-tool", "t2-llm", "t2-root"]),  # 23:00Z the day before
    ("created = '2026-05-01T23:59:59.999Z'", ["t1-tool"]),
    ("created >= NOW() - INTERVAL 864001 SECOND", ["t2-llm"]),
    ("created < now() - interval 9 day AND created > now() - interval 11 day", ["t2-llm"]),
])
def test_timestamp_comparisons_read_any_iso_form_exactly(store, spans, where, expected):
    assert ids(store, spans, where) == expected


def test_traces_shape_returns_every_span_of_matching_traces(store, spans):
    assert ids(store, spans, "error IS NOT NULL", shape="traces") == ["t1-llm", "t1-root", "t1-tool"]


def test_summary_shape_is_one_row_per_trace_with_aggregates(store, spans):
    rows, _ = run(store, f"select: * | from: project_logs('{spans}') summary | sort: id asc")
    t1, t2 = rows
    assert [t1["id"], t2["id"]] == ["t1-root", "t2-root"]
    assert t1["scores"] == {"acc": 0.75}
    assert t1["metrics"]["llm_calls"] == 1 and t1["metrics"]["tool_calls"] == 1
    assert t1["metrics"]["errors"] == 1 and t1["metrics"]["total_tokens"] == 15
    assert (t1["metrics"]["start"], t1["metrics"]["end"], t1["metrics"]["duration"]) == (100.0, 110.0, 10.0)
    assert t1["span_type_info"]["span_count"] == 3
    assert t2["input"] == ("q2" * 100)[:124]
    whole, _ = run(store, f"select: input | from: project_logs('{spans}') summary | filter: id = 't2-root'"
                          " | preview_length: -1")
    assert whole == [{"input": "q2" * 100}]


def test_summary_filter_applies_to_the_summary_row(store, spans):
    rows, _ = run(store, f"select: id | from: project_logs('{spans}') summary | filter: scores.acc > 0.7")
    assert rows == [{"id": "t1-root"}]


def test_select_aliases_and_computed_columns(store, spans):
    rows, _ = run(store, f"select: id, metadata.model as model, day(created) as day, scores.acc * 2 as double"
                         f" | from: project_logs('{spans}') | filter: id = 't1-llm'")
    assert rows == [{"id": "t1-llm", "model": "m1", "day": "2026-05-01T00:00:00.000Z", "double": 1.0}]


def test_sort_by_any_expression_with_offset_cursor(store, spans):
    query = f"select: id | from: project_logs('{spans}') | sort: metadata.model desc, id asc | limit: 2"
    page1, cursor = run(store, query)
    page2, cursor2 = run(store, query + f' | cursor: "{cursor}"')
    page3, cursor3 = run(store, query + f' | cursor: "{cursor2}"')
    assert [r["id"] for r in page1 + page2 + page3] == ["t2-llm", "t2-root", "t1-llm", "t1-root", "t1-tool"]
    _, end = run(store, query + f' | cursor: "{cursor3}"')
    assert end is None


def test_cursor_paging_walks_everything_once_and_ends_with_an_empty_page(store, project):
    log(store, project, *({"id": f"r{i:03d}"} for i in range(250)))
    seen, cursor, pages = [], None, 0
    while True:
        q = f"select: id | from: project_logs('{project}') | limit: 100"
        rows, cursor = run(store, q + (f' | cursor: "{cursor}"' if cursor else ""))
        pages += 1
        if not rows:
            assert cursor is None
            break
        seen += [r["id"] for r in rows]
    assert seen == [f"r{i:03d}" for i in reversed(range(250))]  # default order: _pagination_key desc
    assert pages == 4


def test_cursor_combined_with_pagination_key_sort_as_bt_does(store, project):
    log(store, project, *({"id": f"r{i}"} for i in range(7)))
    seen, cursor = [], None
    for _ in range(5):
        q = f"select: * | from: project_logs('{project}') spans | limit: 3 | sort: _pagination_key ASC"
        rows, cursor = run(store, q + (f' | cursor: "{cursor}"' if cursor else ""))
        seen += [r["id"] for r in rows]
        if cursor is None:
            break
    assert seen == [f"r{i}" for i in range(7)]


def test_limit_above_1000_is_clamped_with_a_warning(store, project):
    from bt_pipelines.emulator.btql import parse_query
    from bt_pipelines.emulator.query import QueryRunner

    log(store, project, *({"id": f"r{i}"} for i in range(1005)))
    result = QueryRunner(store).run(parse_query(f"select: id | from: project_logs('{project}') | limit: 5000"))
    assert len(result.rows) == 1000
    assert result.warnings == ["limit 5000 was clamped to 1000"]


def test_group_by_with_measures(store, spans):
    rows, _ = run(store, f"dimensions: metadata.model as model | measures: count(1) as n, "
                         f"avg(scores.acc) as acc, sum(metrics.total_tokens) as tokens, min(created) as first, "
                         f"max(_xact_id) as x | from: project_logs('{spans}') | sort: model asc")
    assert [(r["model"], r["n"], r["acc"], r["tokens"]) for r in rows] == [
        (None, 1, None, None), ("m1", 2, 0.75, 15), ("m2", 2, 0.0, 7)]
    assert rows[1]["first"] == "2026-05-01T10:00:00.000Z"
    assert len(rows[1]["x"]) == 19


def test_sql_group_by_days(store, spans):
    rows, _ = run(store, f"SELECT day(created) AS day, count(*) AS n FROM project_logs('{spans}') "
                         "WHERE created >= '2026-05-01' AND created < '2026-06-01' GROUP BY 1 ORDER BY day ASC")
    assert rows == [{"day": "2026-05-01T00:00:00.000Z", "n": 3}, {"day": "2026-05-02T00:00:00.000Z", "n": 1}]


def test_measures_without_dimensions_give_one_row(store, spans):
    rows, _ = run(store, f"measures: count(1) as n | from: project_logs('{spans}')")
    assert rows == [{"n": 5}]


def test_version_reads_the_snapshot_as_of_an_xact_id(store, project):
    v1 = log(store, project, {"id": "a", "input": 1}, {"id": "b", "input": 1})
    v2 = log(store, project, {"id": "a", "_is_merge": True, "input": 2}, {"id": "c", "input": 1})
    log(store, project, {"id": "b", "_object_delete": True})

    def state(version):
        rows, _ = run(store, f"select: id, input, _xact_id | from: project_logs('{project}') | sort: id asc", version)
        return [(r["id"], r["input"], r["_xact_id"]) for r in rows]

    assert state(v1) == [("a", 1, v1), ("b", 1, v1)]
    assert state(v2) == [("a", 2, v2), ("b", 1, v1), ("c", 1, v2)]
    assert state(None) == [("a", 2, v2), ("c", 1, v2)]
    assert state("1") == []


def test_experiment_source_reads_several_experiments(store, project):
    e1 = store.create_object("experiment", "e1", project)["id"]
    e2 = store.create_object("experiment", "e2", project)["id"]
    store.write([("experiment", e1, {"id": "x"}), ("experiment", e2, {"id": "y"})])
    rows, _ = run(store, f"select: id, experiment_id | from: experiment('{e1}', '{e2}') | sort: id asc")
    assert rows == [{"experiment_id": e1, "id": "x"}, {"experiment_id": e2, "id": "y"}]


@pytest.mark.parametrize("query, message", [
    ("select: * | from: project_logs('nope')", "no project with id 'nope'"),
    ("select: * | from: project_logs('{p}') | filter: created > 'soon'", "cannot compare a timestamp"),
    ("select: * | from: project_logs('{p}') | filter: frobnicate(id)", "unsupported function frobnicate"),
    ("select: * | from: project_logs('{p}') | filter: count(id) > 1", "only allowed in measures"),
    ("select: * | from: project_logs('{p}') | cursor: \"!!\"", "cursor"),
    ("select: * | from: dataset('{d}') summary", "summary shape is for project_logs"),
])
def test_unsupported_queries_are_query_errors(store, project, query, message):
    dataset = store.create_object("dataset", "d", project)["id"]
    with pytest.raises(QueryError, match=message):
        run(store, query.format(p=project, d=dataset))


def test_offset_cursors_keep_their_snapshot_while_others_write(store, project):
    log(store, project, *({"id": f"r{i}", "metadata": {"n": i}} for i in range(6)))
    query = f"select: id | from: project_logs('{project}') | sort: metadata.n desc | limit: 2"
    page1, cursor = run(store, query)
    log(store, project, {"id": "r3", "_is_merge": True, "metadata": {"n": 99}}, {"id": "new", "metadata": {"n": 50}})
    page2, cursor = run(store, query + f' | cursor: "{cursor}"')
    page3, _ = run(store, query + f' | cursor: "{cursor}"')
    assert [r["id"] for r in page1 + page2 + page3] == ["r5", "r4", "r3", "r2", "r1", "r0"]
