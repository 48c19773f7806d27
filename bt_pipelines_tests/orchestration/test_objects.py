"""Experiments and datasets in Dagster: sensors add, re-export and remove them; catalogs list them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from bt_pipelines import BraintrustResource, ExportConfig, build_definitions
from bt_pipelines.emulator import emulator
from bt_pipelines.orchestration.discover import discover
from bt_pipelines.sink.layout import PartitionPath
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.storage import open_storage

from ..lakeview import folder_pairs, object_pairs, read_rows
from .conftest import use_emulator

KEY = "sk-objects-test-key"
TODAY = datetime.now(UTC).date()


@pytest.fixture
def bt():
    with emulator(seed="demo", days=2, api_key=KEY) as running:
        yield running


@pytest.fixture
def setup(bt, monkeypatch, tmp_path, dagster_instance):
    use_emulator(monkeypatch, bt)
    lake = tmp_path / "lake"
    config = ExportConfig(destination=str(lake), projects=[{"name": "checkout-assistant",
                                                            "start_date": (TODAY - timedelta(days=1)).isoformat()}],
                          exports=[{"name": "bad_filter", "filter": "span_attributes.type === 'llm'"}])
    return build_definitions(config), dagster_instance, open_storage(str(lake))


def asset(defs, table):
    return next(a for a in defs.assets if a.key == dg.AssetKey(["braintrust", "checkout-assistant", table]))


def tick(defs, instance, table, cursor=None) -> dg.SensorResult:
    sensor = next(s for s in defs.sensors if s.name == f"braintrust__checkout_assistant__{table}_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"braintrust": BraintrustResource(api_url=defs.resources[
                                          "braintrust"].api_url, api_key=KEY)})
    result = sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def run(defs, instance, table, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    result = dg.materialize([asset(defs, table)], resources=defs.resources, instance=instance,
                            partition_key=request.partition_key, raise_on_error=False)
    assert result.success
    return result


def project_id(bt):
    return bt.store.find_object("project", name="checkout-assistant", project_id=None)["id"]


def test_a_new_experiment_is_found_by_the_sensor_and_exported_by_its_run(bt, setup):
    defs, instance, storage = setup
    first = tick(defs, instance, "experiments")
    assert sorted(r.partition_key for r in first.run_requests) == sorted(
        instance.get_dynamic_partitions("braintrust__checkout_assistant__experiments"))
    assert not tick(defs, instance, "experiments", first.cursor).run_requests  # nothing changed: no runs
    experiment = bt.store.create_object("experiment", "Prompt v2 (β)", project_id(bt))
    bt.store.write([("experiment", experiment["id"], {"id": f"row-{i}", "input": i, "scores": {"acc": i / 10}})
                    for i in range(7)])
    later = tick(defs, instance, "experiments", first.cursor)
    assert [r.partition_key for r in later.run_requests] == ["prompt-v2"]
    result = run(defs, instance, "experiments", later.run_requests[0])
    (event,) = result.asset_materializations_for_node(asset(defs, "experiments").node_def.name)
    assert event.partition == "prompt-v2" and event.metadata["dagster/row_count"].value == 7
    assert event.metadata["experiment_name"].value == "Prompt v2 (β)"
    folder = "experiments/project=checkout-assistant/experiment=prompt-v2"
    assert folder_pairs(storage, folder) == object_pairs(bt, "experiment", experiment["id"])


def test_an_updated_dataset_is_re_exported_and_a_deleted_one_removed(bt, setup):
    defs, instance, storage = setup
    first = tick(defs, instance, "datasets")
    for request in first.run_requests:
        run(defs, instance, "datasets", request)
    golden = bt.store.find_object("dataset", name="golden-questions", project_id=project_id(bt))
    bt.store.write([("dataset", golden["id"], {"id": "added-later", "input": {"q": "?"}, "expected": "!"})])
    second = tick(defs, instance, "datasets", first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["golden-questions"]
    run(defs, instance, "datasets", second.run_requests[0])
    rows = [r for k in storage.list("datasets/project=checkout-assistant/dataset=golden-questions")
            for r in read_rows(storage, k)]
    assert "added-later" in {r["id"] for r in rows}

    doomed = bt.store.find_object("dataset", name="regression-cases", project_id=project_id(bt))
    bt.store.delete_object("dataset", doomed["id"])
    third = tick(defs, instance, "datasets", second.cursor)
    (removal,) = third.run_requests
    assert removal.partition_key == "regression-cases" and removal.tags["bt_pipelines/removal"] == "true"
    result = run(defs, instance, "datasets", removal)
    (event,) = result.asset_materializations_for_node(asset(defs, "datasets").node_def.name)
    assert event.metadata["deleted"].value is True
    path = PartitionPath("datasets", (("project", "checkout-assistant"), ("dataset", "regression-cases")))
    assert storage.list(path.folder) == [] and read_manifest(storage, path).deleted_at
    assert not tick(defs, instance, "datasets", third.cursor).run_requests  # removed once, not again


def test_catalogs_list_exactly_the_existing_objects(bt, setup):
    defs, instance, storage = setup
    bt.store.delete_object("experiment", bt.store.list_objects("experiment", project_id=project_id(bt))[0]["id"])
    for table in ("experiments_catalog", "datasets_catalog"):
        assert dg.materialize([asset(defs, table)], resources=defs.resources, instance=instance).success
    for kind, table in (("experiment", "experiments_catalog"), ("dataset", "datasets_catalog")):
        rows = [r for k in storage.list(f"{table}/project=checkout-assistant") for r in read_rows(storage, k)]
        live = bt.store.list_objects(kind, project_id=project_id(bt))
        assert sorted(r["id"] for r in rows) == sorted(o["id"] for o in live)
        for row in rows:
            assert row["rows"] == object_pairs(bt, kind, row["id"]).total()
    folder = "experiments_catalog/project=checkout-assistant"
    experiments = [r for k in storage.list(folder) for r in read_rows(storage, k)]
    assert all(dict(r["scores"])["helpfulness"] > 0 for r in experiments)
    assert any(r["base_exp_id"] for r in experiments) and all(r["commit"] for r in experiments)


def test_a_rejected_filter_fails_the_run_naming_the_asset_and_writes_nothing(bt, setup):
    defs, instance, storage = setup
    result = dg.materialize([asset(defs, "bad_filter")], resources=defs.resources, instance=instance,
                            partition_key=TODAY.isoformat(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.description.startswith(
        "asset braintrust/checkout-assistant/bad_filter: Braintrust rejected the query: Invalid query: expected an "
        "expression")
    assert storage.list("bad_filter") == []


def test_discover_registers_partitions_without_a_daemon(bt, setup, monkeypatch):
    defs, instance, _ = setup
    monkeypatch.setattr("bt_pipelines.orchestration.discover.import_module", lambda name: type("M", (), {"defs": defs}))
    found = discover("anything", instance=instance)
    assert found["braintrust/checkout-assistant/experiments"] == sorted(
        ["claude-3-5-haiku-baseline-2", "gpt-4-1-baseline-3", "gpt-4o-mini-baseline-1"])
    assert found["braintrust/checkout-assistant/datasets"] == ["golden-questions", "regression-cases"]
