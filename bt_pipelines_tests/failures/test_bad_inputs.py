"""Bad input, row by row: each gives a correct export or a clear error, and never escapes the lake."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import boto3
import pytest

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.sync import ExportTarget, export_days, export_object
from bt_pipelines.orchestration.objects import object_keys
from bt_pipelines.sink.convert import to_batch
from bt_pipelines.sink.layout import slugify
from bt_pipelines.sink.schema import EXPERIMENTS, PROJECT_LOGS
from bt_pipelines.sink.storage import StorageError, open_storage
from bt_pipelines.source.catalog import list_objects, resolve_projects
from bt_pipelines.source.client import BraintrustClient

from ..lakeview import lake_pairs, partition_rows, source_pairs

TODAY = datetime.now(UTC).date()
HOSTILE_NAMES = ["../../etc/passwd", "a/b c", "..", "it's \"quoted\"", "日本語 プロジェクト 🚀", "back\\slash",
                 "%2e%2e"]


@pytest.fixture(scope="module")
def bt():
    with emulator() as running:
        yield running


@pytest.fixture
def client(bt):
    with BraintrustClient(bt.url, bt.api_key) as made:
        yield made


def lake_files(lake_root):
    return [p for p in lake_root.parent.rglob("*") if p.is_file()]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_project_names_stay_inside_the_lake(bt, client, local_lake, name):
    pid = bt.store.create_object("project", name)["id"]
    bt.store.write([("project_logs", pid, {"id": "r1", "input": name})])
    found = resolve_projects(client, [name])[name]
    target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", found.id, found.name,
                          (("project", slugify(found.name)),))
    export_days(client, local_lake.storage, target, [TODAY])
    root = local_lake.storage.root.resolve()
    assert all(f.resolve().is_relative_to(root) for f in lake_files(root))
    (folder,) = {p.parent.parent.name for p in (root / "project_logs").rglob("*.parquet")}
    assert folder == f"project={slugify(name)}" and "/" not in slugify(name) and ".." not in slugify(name)
    assert lake_pairs(local_lake.storage, target.day_path(TODAY)) == source_pairs(bt, found.id, TODAY)


def test_hostile_experiment_names_get_safe_distinct_keys(bt, client, local_lake):
    pid = bt.store.create_object("project", "experiments-with-odd-names")["id"]
    for name in HOSTILE_NAMES + ["A B", "a-b"]:
        experiment = bt.store.create_object("experiment", name, pid)
        bt.store.write([("experiment", experiment["id"], {"id": f"row-of-{experiment['id']}", "input": name})])
    keys = object_keys(list(list_objects(client, "experiment", project_id=pid)))
    assert len(keys) == len(HOSTILE_NAMES) + 2  # "A B" and "a-b" share a slug: the newer one gets an id suffix
    root = local_lake.storage.root.resolve()
    for key, obj in keys.items():
        target = ExportTarget("experiments", EXPERIMENTS, "experiment", obj.id, obj.name,
                              (("project", "p"), ("experiment", key)))
        assert export_object(client, local_lake.storage, target).rows_written == 1
    assert all(f.resolve().is_relative_to(root) for f in lake_files(root))


def nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


ODD_ROWS = {
    "a 10 MB field": {"input": {"document": "x" * (10 * 1024 * 1024)}},
    "nesting 300 levels deep": {"metadata": nested(300)},
    "non-BMP characters": {"input": "𝄞 music, 🚀 rockets, 𓂀 eyes", "tags": ["🏷️", "𠜎"]},
    "every optional column null": {},
    "keys that appear mid-partition": {"metadata": {"brand_new_key": {"x": [1, 2, 3]}}},
    "non-numeric and huge metric values": {"metrics": {"tokens": 12, "label": "fast", "ns": 10**30},
                                           "scores": {"acc": 0.5, "flag": True, "gone": None}},
}


@pytest.mark.parametrize("what", list(ODD_ROWS))
def test_odd_rows_export_exactly(bt, client, local_lake, what):
    pid = bt.store.create_object("project", f"odd rows {what}")["id"]
    row = {"id": "odd", **ODD_ROWS[what]}
    bt.store.write([("project_logs", pid, {"id": "plain", "input": "before"}), ("project_logs", pid, row)])
    target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, what, (("project", slugify(what)),))
    export_days(client, local_lake.storage, target, [TODAY])
    rows = {r["id"]: r for r in partition_rows(local_lake.storage, target.day_path(TODAY))}
    assert set(rows) == {"plain", "odd"}
    for column in ("input", "metadata"):
        if column in row:
            assert json.loads(rows["odd"][column]) == row[column]
    if "tags" in row:
        assert rows["odd"]["tags"] == row["tags"]
    if "metrics" in row:
        assert dict(rows["odd"]["metrics"]) == {"tokens": 12.0, "ns": 1e30}  # the label is no number
        assert dict(rows["odd"]["scores"]) == {"acc": 0.5, "gone": None}  # a bool is no score


def test_nan_and_infinite_scores_never_reach_the_lake_as_numbers():
    rows = [{"id": "r", "created": "2026-01-01T00:00:00.000Z", "_xact_id": "1", "_pagination_key": "p1",
             "scores": {"nan": math.nan, "inf": math.inf, "ok": 1.0}, "metrics": {"neg_inf": -math.inf}}]
    batch = to_batch(PROJECT_LOGS, rows)
    assert dict(batch.column("scores")[0].as_py()) == {"ok": 1.0}
    assert batch.column("metrics")[0].as_py() == []


def test_s3_without_credentials_is_a_clear_error_without_retries(bt, client, s3_endpoint, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    pid = bt.store.create_object("project", "creds")["id"]
    bt.store.write([("project_logs", pid, {"id": "r"})])
    target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "creds", (("project", "creds"),))
    with pytest.raises(StorageError, match="Unable to locate credentials") as raised:
        export_days(client, open_storage("s3://some-bucket/x", s3_client=anonymous), target, [TODAY])
    assert "after 4 attempts" not in str(raised.value)  # permanent: not retried
