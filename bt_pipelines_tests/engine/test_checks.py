"""The checks behind the asset checks: each finds its kind of damage and says what to do."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bt_pipelines.emulator import emulator
from bt_pipelines.engine.checks import matches_schema, matches_source, unique_ids
from bt_pipelines.engine.sync import ExportOptions, ExportTarget, export_days
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.schema import PROJECT_LOGS
from bt_pipelines.source.client import BraintrustClient

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=1) as running:
        yield running


@pytest.fixture
def exported(bt, local_lake):
    pid = bt.store.find_object("project", name="checkout-assistant", project_id=None)["id"]
    target = ExportTarget("project_logs", PROJECT_LOGS, "project_logs", pid, "p", (("project", "p"),))
    with BraintrustClient(bt.url, bt.api_key) as client:
        export_days(client, local_lake.storage, target, [TODAY], ExportOptions(row_group_rows=20, target_file_bytes=1))
        yield client, local_lake.storage, target, target.day_path(TODAY)


def test_an_exact_partition_passes_all_three(exported):
    client, storage, target, path = exported
    assert matches_source(client, storage, target, path, TODAY).passed
    assert unique_ids(storage, path).passed
    assert matches_schema(storage, path, PROJECT_LOGS).passed


def test_a_file_listed_twice_breaks_unique_ids_and_the_count(exported):
    client, storage, target, path = exported
    manifest = read_manifest(storage, path)
    original = storage.root / manifest.files[0].key
    shutil.copy(original, original.with_name("copy.parquet"))
    manifest.files.append(type(manifest.files[0])(**{**manifest.files[0].to_dict(),
                                                     "key": f"{path.folder}/copy.parquet"}))
    storage.put_bytes(path.manifest_key, manifest.to_json())
    duplicates = unique_ids(storage, path)
    assert not duplicates.passed and "repeat an id" in duplicates.description
    assert duplicates.metadata["duplicate_ids"] == manifest.files[0].rows
    count = matches_source(client, storage, target, path, TODAY)
    assert not count.passed and "re-materialize this partition" in count.description


def test_a_file_of_another_schema_fails_the_schema_check(exported):
    _, storage, _, path = exported
    key = read_manifest(storage, path).files[0].key
    table = pq.read_table(storage.root / key)
    retyped = table.set_column(table.schema.get_field_index("_xact_id"), "_xact_id",
                               table.column("_xact_id").cast(pa.string()))
    sink = io.BytesIO()
    pq.write_table(retyped, sink)
    storage.put_bytes(key, sink.getvalue())
    outcome = matches_schema(storage, path, PROJECT_LOGS)
    assert not outcome.passed and "column _xact_id is string, not int64" in outcome.description


def test_a_partition_never_materialized_says_so(exported):
    client, storage, target, _ = exported
    other = target.day_path(datetime(2020, 1, 1).date())
    for outcome in (matches_source(client, storage, target, other, TODAY), unique_ids(storage, other)):
        assert not outcome.passed and "never materialized" in outcome.description
