"""The three query forms parse into the same model; unsupported input is a clear QueryError."""

from __future__ import annotations

import pytest

from bt_pipelines.emulator.btql import QueryError, parse_query
from bt_pipelines.emulator.btql.ast import Binary, Call, Ident, In, Interval, Literal, SortKey, Unary


def test_bt_pipe_form_with_cursor_and_interval():
    q = parse_query("select: * | from: project_logs('p1') spans | limit: 1000 | sort: _pagination_key DESC"
                    " | filter: created >= NOW() - INTERVAL 259200 SECOND | cursor: \"aQJI5+sNAAA\"")
    assert (q.source, q.object_ids, q.shape, q.select, q.limit) == ("project_logs", ("p1",), "spans", None, 1000)
    assert q.sort == [SortKey(Ident(("_pagination_key",)), True)]
    assert q.cursor == "aQJI5+sNAAA"
    assert q.filter == Binary("ge", Ident(("created",)), Binary("sub", Call("now", ()), Interval(259200, "second")))


def test_migrate_newline_form_with_several_experiments():
    q = parse_query("select: *\nfrom: experiment('a', 'b') spans\nfilter: _pagination_key > 'p1'\n"
                    "sort: _pagination_key asc\nlimit: 1000")
    assert q.object_ids == ("a", "b")
    assert q.filter == Binary("gt", Ident(("_pagination_key",)), Literal("p1"))
    assert q.sort == [SortKey(Ident(("_pagination_key",)), False)]


def test_sql_form_with_group_by_and_shape():
    q = parse_query("SELECT metadata.model AS model, count(*) AS n FROM project_logs('p', shape => 'traces') "
                    "WHERE scores.acc > 0.5 GROUP BY 1 ORDER BY n DESC LIMIT 10")
    assert q.shape == "traces" and q.limit == 10
    assert [d.alias for d in q.dimensions] == ["model"]
    assert [m.alias for m in q.measures] == ["n"]


def test_json_tree_form_as_the_sdk_sends_it():
    q = parse_query({
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                 "args": [{"op": "literal", "value": "p"}]},
        "cursor": None, "limit": 1000,
        "filter": {"op": "and", "children": [
            {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]}, "right": {"op": "literal", "value": "r"}},
            {"op": "or", "children": [
                {"op": "isnull", "expr": {"op": "ident", "name": ["span_attributes", "purpose"]}},
                {"op": "ne", "left": {"op": "ident", "name": ["span_attributes", "purpose"]},
                 "right": {"op": "literal", "value": "scorer"}}]}]},
        "sort": [{"expr": {"op": "ident", "name": ["_xact_id"]}, "dir": "desc"}],
    })
    assert q.filter == Binary(
        "and", Binary("eq", Ident(("root_span_id",)), Literal("r")),
        Binary("or", Unary("isnull", Ident(("span_attributes", "purpose"))),
               Binary("ne", Ident(("span_attributes", "purpose")), Literal("scorer"))))
    assert q.sort == [SortKey(Ident(("_xact_id",)), True)]


@pytest.mark.parametrize("text, expected", [
    ("a IN ['x', 'y']", In(Ident(("a",)), (Literal("x"), Literal("y")))),
    ("a NOT IN ('x')", In(Ident(("a",)), (Literal("x"),), negated=True)),
    ("error IS NOT NULL", Unary("isnotnull", Ident(("error",)))),
    ("NOT a = 1 OR b < 2", Binary("or", Unary("not", Binary("eq", Ident(("a",)), Literal(1))),
                                  Binary("lt", Ident(("b",)), Literal(2)))),
    ("tags INCLUDES 'vip'", Binary("includes", Ident(("tags",)), Literal("vip"))),
    ("s = 'it''s' AND t = 'it\\'s'", Binary("and", Binary("eq", Ident(("s",)), Literal("it's")),
                                            Binary("eq", Ident(("t",)), Literal("it's")))),
    ("created > now() - interval 7 day", Binary("gt", Ident(("created",)),
                                                 Binary("sub", Call("now", ()), Interval(7, "day")))),
    ("metadata['user id'] = -3", Binary("eq", Ident(("metadata", "user id")), Literal(-3))),
])
def test_filter_expressions(text, expected):
    assert parse_query(f"select: * | from: dataset('d') | filter: {text}").filter == expected


@pytest.mark.parametrize("query, message", [
    ("select: * | from: nowhere('x')", "unknown source 'nowhere'"),
    ("select: *", "no `from:` clause"),
    ("select: * | from: dataset('d') | pivot: x", "unsupported clause 'pivot'"),
    ("select: * | from: dataset('d') | filter: a = ", "expected an expression"),
    ("select: * | from: dataset('d', 'e')", "takes exactly one id"),
    ("select: * | from: project_logs('p') fancy", "unknown shape 'fancy'"),
    ("SELECT * FROM project_logs('p') JOIN x", "no joins"),
    ("SELECT * FROM project_logs('p') cursor 'abc'", "cursors are not available in SQL"),
    ("SELECT id, count(*) AS n FROM project_logs('p') GROUP BY metadata.model", "must be in GROUP BY"),
    ("select: * | from: dataset('d') | filter: created > now() - interval 2 fortnight", "interval unit"),
    ({"from": {"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": []}},
     "needs at least one object id"),
    (42, "must be a SQL/BTQL string or a JSON query object"),
])
def test_unsupported_queries_say_what_is_wrong(query, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("`", ".")):
        parse_query(query)
