"""The seeded organisations: deterministic, realistic, and covering what exporters must handle."""

from __future__ import annotations

import time

from bt_pipelines.emulator.seed import DEMO_PROJECTS, seed_bulk, seed_demo
from bt_pipelines.emulator.store import Store

from .helpers import run

NOW = 1_790_000_000.0  # a fixed clock makes two seeds comparable


def test_demo_org_is_deterministic():
    first, second = Store(), Store()
    seed_demo(first, now=NOW)
    seed_demo(second, now=NOW)
    for a, b in zip(first.list_objects("project"), second.list_objects("project"), strict=True):
        rows_a, _ = run(first, f"select: id, _xact_id, scores | from: project_logs('{a['id']}') | limit: 1000")
        rows_b, _ = run(second, f"select: id, _xact_id, scores | from: project_logs('{b['id']}') | limit: 1000")
        assert a["id"] == b["id"] and rows_a == rows_b


def test_demo_org_has_what_exporters_must_handle():
    store = Store()
    seed_demo(store, now=NOW)
    projects = store.list_objects("project")
    assert sorted(p["name"] for p in projects) == sorted(DEMO_PROJECTS)
    for project in projects:
        pid = project["id"]
        logs = f"from: project_logs('{pid}')"
        days, _ = run(store, f"dimensions: day(created) as day | measures: count(1) as n | {logs}")
        assert len(days) >= 14
        kinds, _ = run(store, f"dimensions: span_attributes.type as t | measures: count(1) as n | {logs}")
        assert {k["t"] for k in kinds} >= {"task", "llm", "tool", "score"}
        merged, _ = run(store, f"measures: count(1) as n | {logs} | filter: scores.user_feedback IS NOT NULL")
        assert merged[0]["n"] > 10
        sizes, _ = run(store, f"select: * | from: project_logs('{pid}') | limit: 200")
        mean_size = sum(len(str(r)) for r in sizes) / len(sizes)
        assert 700 < mean_size < 2500
        history = store.db.execute("SELECT count(*) FROM rows WHERE obj = ? AND deleted = 1",
                                   (f"project_logs:{pid}",)).fetchone()[0]
        assert history > 0  # a few deletes
        assert len(store.list_objects("experiment", project_id=pid)) >= 3
        datasets = store.list_objects("dataset", project_id=pid)
        assert len(datasets) >= 2
        reviewed = f"from: dataset('{datasets[0]['id']}') | filter: metadata.reviewed = true"
        updated, _ = run(store, f"measures: count(1) as n | {reviewed}")
        assert updated[0]["n"] == 5


def test_bulk_generator_spreads_spans_over_days_as_whole_traces():
    store = Store()
    pid = seed_bulk(store, spans=10_000, days=5, now=NOW)
    days, _ = run(store, f"dimensions: day(created) as day | measures: count(1) as n | from: project_logs('{pid}')")
    assert sum(d["n"] for d in days) == 10_000 and 5 <= len(days) <= 6
    traces, _ = run(store, f"measures: count(1) as n | from: project_logs('{pid}') summary")
    assert traces == [{"n": 2_000}]
    newest, _ = run(store, f"select: created | from: project_logs('{pid}') | sort: created desc | limit: 1")
    assert newest[0]["created"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW))
    store.write([("project_logs", pid, {"id": "after-bulk"})])  # live writes continue the clock
    rows, _ = run(store, f"select: id | from: project_logs('{pid}') | limit: 1")
    assert rows == [{"id": "after-bulk"}]


def test_a_db_file_keeps_the_organisation_across_restarts(tmp_path):
    path = str(tmp_path / "bt.sqlite")
    first = Store(path)
    pid = first.create_object("project", "kept")["id"]
    x1 = first.write([("project_logs", pid, {"id": "a", "input": 1})]).xact_id
    first.db.close()
    again = Store(path)
    assert again.get_object("project", pid)["name"] == "kept"
    x2 = again.write([("project_logs", pid, {"id": "a", "_is_merge": True, "output": 2})]).xact_id
    rows, _ = run(again, f"select: id, input, output | from: project_logs('{pid}')")
    assert rows == [{"id": "a", "input": 1, "output": 2}] and x2 > x1
