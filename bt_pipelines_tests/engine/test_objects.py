"""Experiments, datasets, trace summaries and custom exports through the engine."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.sync import ExportOptions, ExportTarget, export_days, export_object, remove_object
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.schema import DATASETS, EXPERIMENTS, PROJECT_LOGS, TRACE_SUMMARIES
from bt_pipelines.source.client import BraintrustClient
from bt_pipelines.source.errors import QueryRejected

from ..lakeview import folder_pairs, lake_pairs, object_pairs, partition_rows, read_rows

DAYS = 3
TODAY = datetime.now(UTC).date()
ALL_DAYS = [TODAY - timedelta(days=i) for i in reversed(range(DAYS))]


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=DAYS) as running:
        yield running


@pytest.fixture
def client(bt):
    with BraintrustClient(bt.url, bt.api_key, sleep=lambda s: None) as made:
        yield made


def project(bt, name="checkout-assistant"):
    return bt.store.find_object("project", name=name, project_id=None)


def object_target(table, schema, kind, obj) -> ExportTarget:
    return ExportTarget(table, schema, kind, obj["id"], obj["name"], (("project", "p"), (kind, obj["name"])))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
@pytest.mark.parametrize("table, schema, kind", [("experiments", EXPERIMENTS, "experiment"),
                                                 ("datasets", DATASETS, "dataset")])
def test_each_experiment_and_dataset_equals_the_source_at_its_recorded_version(bt, client, local_lake, fmt,
                                                                               table, schema, kind):
    objects = bt.store.list_objects(kind, project_id=project(bt)["id"])
    assert len(objects) >= 2
    for obj in objects:
        target = object_target(table, schema, kind, obj)
        result = export_object(client, local_lake.storage, target, ExportOptions(format=fmt))
        manifest = read_manifest(local_lake.storage, target.object_path())
        assert manifest.watermark == result.watermark and manifest.rows == result.rows_written > 0
        assert folder_pairs(local_lake.storage, target.object_path().folder) == object_pairs(
            bt, kind, obj["id"], version=manifest.watermark)
        assert all("/date=" in f.key for f in manifest.files)  # rows sit in date sub-folders


def test_a_dataset_export_leaves_deleted_records_out_and_follows_updates(bt, client, local_lake):
    dataset = bt.store.list_objects("dataset", project_id=project(bt, "Support Bot EU")["id"])[0]
    target = object_target("datasets", DATASETS, "dataset", dataset)
    export_object(client, local_lake.storage, target)
    ids = sorted(i for i, _ in folder_pairs(local_lake.storage, target.object_path().folder))
    bt.store.write([("dataset", dataset["id"], {"id": ids[0], "_object_delete": True}),
                    ("dataset", dataset["id"], {"id": ids[1], "_is_merge": True, "expected": {"answer": "new"}})])
    export_object(client, local_lake.storage, target)
    rows = {r["id"]: r for key in local_lake.storage.list(target.object_path().folder)
            for r in read_rows(local_lake.storage, key)}
    assert ids[0] not in rows and rows[ids[1]]["expected"] == '{"answer":"new"}'
    assert folder_pairs(local_lake.storage, target.object_path().folder) == object_pairs(bt, "dataset", dataset["id"])


def test_a_deleted_object_is_removed_from_the_lake_and_recorded(bt, client, local_lake):
    experiment = bt.store.list_objects("experiment", project_id=project(bt)["id"])[0]
    target = object_target("experiments", EXPERIMENTS, "experiment", experiment)
    export_object(client, local_lake.storage, target)
    assert local_lake.storage.list(target.object_path().folder)
    removed = remove_object(local_lake.storage, target)
    assert removed.removed and local_lake.storage.list(target.object_path().folder) == []
    assert read_manifest(local_lake.storage, target.object_path()).deleted_at


def test_trace_summaries_are_one_row_per_trace_with_the_trace_aggregates(bt, client, local_lake):
    pid = project(bt)["id"]
    bt.store.write([("project_logs", pid, span) for span in [
        {"id": "hand-root", "span_id": "hs1", "root_span_id": "hand-trace", "span_parents": None,
         "input": {"q": "x" * 500}, "scores": {"helpfulness": 1.0}, "metrics": {"start": 10.0, "end": 20.0},
         "span_attributes": {"name": "answer", "type": "task"}},
        {"id": "hand-llm", "span_id": "hs2", "root_span_id": "hand-trace", "span_parents": ["hs1"],
         "scores": {"helpfulness": 0.5}, "metrics": {"start": 11.0, "end": 15.0, "prompt_tokens": 100,
                                                    "completion_tokens": 20, "total_tokens": 120},
         "span_attributes": {"name": "chat", "type": "llm"}},
        {"id": "hand-tool", "span_id": "hs3", "root_span_id": "hand-trace", "span_parents": ["hs1"],
         "error": "timeout", "metrics": {"start": 15.0, "end": 19.0}, "span_attributes": {"name": "t", "type": "tool"}},
    ]])
    target = ExportTarget("project_logs_traces", TRACE_SUMMARIES, "project_logs", pid, "p", (("project", "p"),),
                          shape="summary")
    export_days(client, local_lake.storage, target, [TODAY])
    rows = partition_rows(local_lake.storage, target.day_path(TODAY))
    roots = object_pairs(bt, "project_logs", pid, where=f"is_root = true AND created >= '{TODAY}'")
    assert sorted(r["id"] for r in rows) == sorted(i for i, _ in roots)  # one row per trace, nothing else
    hand = next(r for r in rows if r["id"] == "hand-root")
    assert dict(hand["scores"]) == {"helpfulness": 0.75}
    metrics = dict(hand["metrics"])
    assert (metrics["llm_calls"], metrics["tool_calls"], metrics["errors"], metrics["total_tokens"]) == (1, 1, 1, 120)
    assert (metrics["start"], metrics["end"], metrics["duration"]) == (10.0, 20.0, 10.0)
    assert hand["input"] == '{"q":"' + "x" * 500 + '"}'  # full previews, not cut at 124 characters
    assert hand["span_name"] == "answer"


def test_a_custom_export_holds_exactly_the_matching_spans(bt, client, local_lake):
    pid = project(bt)["id"]
    target = ExportTarget("llm_spans", PROJECT_LOGS, "project_logs", pid, "p", (("project", "p"),),
                          filter="span_attributes.type = 'llm'")
    export_days(client, local_lake.storage, target, ALL_DAYS)
    for day in ALL_DAYS:
        expected = object_pairs(bt, "project_logs", pid, where=f"span_attributes.type = 'llm' AND created >= "
                                f"'{day}' AND created < '{day + timedelta(days=1)}'")
        assert lake_pairs(local_lake.storage, target.day_path(day)) == expected


def test_whole_traces_hold_exactly_the_spans_of_traces_with_a_match(bt, client, local_lake):
    pid = project(bt)["id"]
    target = ExportTarget("errored", PROJECT_LOGS, "project_logs", pid, "p", (("project", "p"),),
                          filter="span_attributes.type = 'tool'", whole_traces=True)
    export_days(client, local_lake.storage, target, ALL_DAYS)
    all_spans = _all_spans(bt, pid)
    traces_with_tool = {s["root_span_id"] for s in all_spans if (s["span_attributes"] or {}).get("type") == "tool"}
    for day in ALL_DAYS:
        roots = object_pairs(bt, "project_logs", pid, where=f"is_root = true AND created >= '{day}' AND created < "
                             f"'{day + timedelta(days=1)}'")
        root_ids = {i for i, _ in roots}
        expected = Counter((s["id"], s["_xact_id"]) for s in all_spans if s["root_span_id"] in traces_with_tool
                           and _root_id(all_spans, s["root_span_id"]) in root_ids)
        assert expected and lake_pairs(local_lake.storage, target.day_path(day)) == expected


def test_an_invalid_filter_fails_before_any_file_is_written(bt, client, local_lake):
    target = ExportTarget("bad", PROJECT_LOGS, "project_logs", project(bt)["id"], "p", (("project", "p"),),
                          filter="span_attributes.type === 'llm'")
    with pytest.raises(QueryRejected, match="expected an expression"):
        export_days(client, local_lake.storage, target, ALL_DAYS)
    assert local_lake.storage.list("bad") == []


def _all_spans(bt, pid):
    with bt.client() as c:
        last, out = None, []
        while True:
            keyset = f" | filter: _pagination_key > '{last}'" if last else ""
            rows = c.post("/btql", json={"query": f"select: * | from: project_logs('{pid}'){keyset} "
                                                  "| sort: _pagination_key asc | limit: 1000"}).json()["data"]
            if not rows:
                return out
            out += rows
            last = rows[-1]["_pagination_key"]


def _root_id(spans, root_span_id):
    return next((s["id"] for s in spans if s["root_span_id"] == root_span_id and s["is_root"]), None)
