"""Write semantics of the insert API: replace, merge, merge paths, array delete, delete, comments."""

from __future__ import annotations

import pytest

from bt_pipelines.emulator.rows import WriteError
from bt_pipelines.emulator.store import Store, object_key

from .helpers import log, run


def row(store: Store, project: str, row_id: str):
    return store.fetch_latest(object_key("project_logs", project), row_id)


def test_a_plain_write_replaces_the_row_but_keeps_created_and_pagination_key(store, project):
    log(store, project, {"id": "r", "input": {"a": 1}, "output": "x", "created": "2026-01-02T03:04:05.678+00:00"})
    first = row(store, project, "r")
    log(store, project, {"id": "r", "input": {"b": 2}, "created": "2030-01-01T00:00:00Z"})
    second = row(store, project, "r")
    assert second["input"] == {"b": 2} and second["output"] is None
    assert second["created"] == first["created"] == "2026-01-02T03:04:05.678Z"
    assert second["_pagination_key"] == first["_pagination_key"]
    assert second["_xact_id"] > first["_xact_id"]


def test_is_merge_deep_merges_and_tags_merge_as_a_set(store, project):
    log(store, project, {"id": "r", "metadata": {"a": 5, "b": 10, "n": {"x": 1}}, "tags": ["t1"]})
    log(store, project, {"id": "r", "_is_merge": True, "metadata": {"b": 11, "c": 20, "n": {"y": 2}},
                         "tags": ["t1", "t2"], "scores": {"acc": 0.5}})
    merged = row(store, project, "r")
    assert merged["metadata"] == {"a": 5, "b": 11, "c": 20, "n": {"x": 1, "y": 2}}
    assert merged["tags"] == ["t1", "t2"]
    assert merged["scores"] == {"acc": 0.5}


def test_merge_paths_stop_the_merge_at_their_depth(store, project):
    log(store, project, {"id": "r", "input": {"a": {"b": 10}, "c": {"d": 20}}, "output": {"a": 20}})
    log(store, project, {"id": "r", "_is_merge": True, "_merge_paths": [["input", "a"], ["output"]],
                         "input": {"a": {"q": 30}, "c": {"e": 30}, "bar": "baz"}, "output": {"d": 40}})
    merged = row(store, project, "r")
    assert merged["input"] == {"a": {"q": 30}, "c": {"d": 20, "e": 30}, "bar": "baz"}
    assert merged["output"] == {"d": 40}


def test_array_delete_removes_values(store, project):
    log(store, project, {"id": "r", "tags": ["a", "b", "c"], "metadata": {"l": [1, 2, 3]}})
    log(store, project, {"id": "r", "_is_merge": True, "_array_delete": [
        {"path": ["tags"], "delete": ["b"]}, {"path": ["metadata", "l"], "delete": [1, 3]}]})
    assert row(store, project, "r")["tags"] == ["a", "c"]
    assert row(store, project, "r")["metadata"] == {"l": [2]}


def test_object_delete_hides_the_row_but_history_keeps_it(store, project):
    before = log(store, project, {"id": "r", "input": 1}, {"id": "s", "input": 2})
    log(store, project, {"id": "r", "_object_delete": True})
    now, _ = run(store, f"select: id | from: project_logs('{project}')")
    then, _ = run(store, f"select: id | from: project_logs('{project}')", version=before)
    assert [r["id"] for r in now] == ["s"]
    assert sorted(r["id"] for r in then) == ["r", "s"]


def test_every_write_gets_a_new_increasing_xact_id_shared_by_its_rows(store, project):
    x1 = log(store, project, {"id": "a"}, {"id": "b"})
    x2 = log(store, project, {"id": "c"})
    rows, _ = run(store, f"select: id, _xact_id | from: project_logs('{project}')")
    assert {r["id"]: r["_xact_id"] for r in rows} == {"a": x1, "b": x1, "c": x2}
    assert len(x1) == len(x2) == 19 and x2 > x1


def test_pagination_keys_are_time_ordered_and_unique(store, project):
    log(store, project, *({"id": f"r{i}"} for i in range(5)))
    log(store, project, {"id": "later"})
    rows, _ = run(store, f"select: id, _pagination_key | from: project_logs('{project}') | sort: _pagination_key asc")
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3", "r4", "later"]
    assert all(len(r["_pagination_key"]) == 21 and r["_pagination_key"][0] == "p" for r in rows)


def test_rows_have_every_column_and_spans_get_ids(store, project):
    log(store, project, {"input": "hello"})
    (only,), _ = run(store, f"select: * | from: project_logs('{project}')")
    assert list(only) == sorted(only)
    assert only["log_id"] == "g" and only["project_id"] == project and only["org_id"] == store.org_id
    assert only["is_root"] is True and only["root_span_id"] == only["span_id"]
    assert only["error"] is None and only["expected"] is None
    assert only["created"].endswith("Z") and len(only["created"]) == 24


def test_a_comment_row_is_appended_to_its_target(store, project):
    log(store, project, {"id": "r", "input": 1})
    log(store, project, {"id": "c1", "origin": {"id": "r"}, "comment": {"text": "nice"}})
    comments = row(store, project, "r")["comments"]
    assert [c["comment"] for c in comments] == [{"text": "nice"}]
    assert row(store, project, "c1") is None


def test_bad_events_are_refused(store, project):
    with pytest.raises(WriteError, match="created"):
        log(store, project, {"id": "r", "created": "yesterday-ish"})
    with pytest.raises(WriteError, match="_merge_paths"):
        log(store, project, {"id": "r", "_merge_paths": [["a"]]})
