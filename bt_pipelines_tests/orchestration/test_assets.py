"""The Dagster layer against a real Dagster instance: specs, partitions, runs and their metadata."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from bt_pipelines import ExportConfig, build_definitions
from bt_pipelines.emulator import emulator
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.storage import open_storage

from ..lakeview import lake_pairs, source_pairs
from .conftest import use_emulator

KEY = "sk-dagster-test-key-0987654321"
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=i) for i in reversed(range(3))]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=3, api_key=KEY) as running:
        yield running


@pytest.fixture
def env(bt, monkeypatch, tmp_path):
    use_emulator(monkeypatch, bt)
    return tmp_path


@pytest.fixture
def instance(dagster_instance):
    return dagster_instance


def config(destination, projects=("checkout-assistant",), **extra) -> ExportConfig:
    """Logs only, unless a test asks for more."""
    extra = {"experiments": False, "datasets": False, "trace_summaries": False, **extra}
    return ExportConfig(destination=str(destination), projects=[
        {"name": name, "start_date": DAYS[0].isoformat()} for name in projects], **extra)


def materialize(defs: dg.Definitions, instance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(defs.assets), resources=defs.resources, instance=instance, raise_on_error=False,
                          **kwargs)


def test_the_repository_code_location_has_one_daily_asset_per_project():
    from bt_pipelines.definitions import defs

    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    tables = ["project_logs", "project_logs_traces", "llm_spans", "errored_traces", "experiments",
              "experiments_catalog", "datasets", "datasets_catalog"]
    assert set(specs) == {f"braintrust/{p}/{t}" for p in ("checkout-assistant", "support-bot-eu") for t in tables}
    assert {s.name for s in defs.sensors} == {f"braintrust__{p}__{t}_sensor" for t in ("experiments", "datasets",
                                                                                      "changes")
                                              for p in ("checkout_assistant", "support_bot_eu")}
    assert {s.name for s in defs.schedules} == {f"braintrust__{p}__{t}" for t in ("close_yesterday", "reconcile")
                                                for p in ("checkout_assistant", "support_bot_eu")}
    changes = defs.resolve_sensor_def("braintrust__checkout_assistant__changes_sensor")
    assert changes.default_status == dg.DefaultSensorStatus.STOPPED and changes.minimum_interval_seconds == 300
    asset = defs.resolve_assets_def(dg.AssetKey.from_user_string("braintrust/checkout-assistant/project_logs"))
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition) and partitions.timezone == "UTC"
    assert partitions.get_last_partition_key() == TODAY.isoformat()  # today is included
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    spec = specs["braintrust/checkout-assistant/project_logs"]
    assert spec.group_name == "braintrust" and spec.kinds == {"braintrust", "parquet", "local"}
    assert next(iter(asset.node_def.pools)) == "braintrust_api"
    assert "dagster/column_schema" in spec.metadata


def test_max_partitions_per_run_chunks_backfills(env):
    defs = build_definitions(config(env / "lake", max_partitions_per_run=7))
    asset = next(iter(defs.assets))
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)


@pytest.mark.parametrize("change, message", [
    ({"destination": "ftp://host/lake"}, "unknown scheme 'ftp'"),
    ({"destination": "s3:///prefix"}, "has no bucket"),
    ({"projects": []}, "projects is empty"),
    ({"projects": [{"name": "a", "start_date": "2026-13-01"}]}, "not a YYYY-MM-DD date"),
    ({"projects": [{"name": "A b", "start_date": "2026-01-01"}, {"name": "a-b", "start_date": "2026-01-01"}]},
     "both map to the name 'a-b'"),
    ({"projects": [{"name": "a-b", "start_date": "2026-01-01"}, {"name": "a_b", "start_date": "2026-01-01"}]},
     "both map to the name"),
    ({"exports": [{"name": "Bad Name", "filter": "x = 1"}]}, "must be lower-case letters"),
    ({"exports": [{"name": "experiments", "filter": "x = 1"}]}, "taken by a built-in table"),
    ({"exports": [{"name": "e", "filter": " "}]}, "filter is empty"),
    ({"exports": [{"name": "e", "filter": "x = 1"}, {"name": "e", "filter": "y = 1"}]}, "duplicate names"),
    ({"projects": [{"name": "a", "start_date": "2026-01-01", "slug": "Bad/Slug"}]}, "must be lower-case"),
    ({"format": "csv"}, "'parquet' or 'jsonl'"),
    ({"page_size": 5000}, "less than or equal to 1000"),
    ({"read_streams": 9}, "less than or equal to 8"),
    ({"api_key": "sk-literal"}, "Extra inputs are not permitted"),
])
def test_config_mistakes_are_named(change, message):
    base = {"destination": "/tmp/lake", "projects": [{"name": "p", "start_date": "2026-01-01"}]}
    with pytest.raises(ValidationError, match=message):
        ExportConfig.model_validate({**base, **change})


def test_environment_overrides_win_over_the_file(monkeypatch):
    monkeypatch.setenv("BT_PIPELINES_DESTINATION", "s3://prod-lake/braintrust")
    monkeypatch.setenv("BRAINTRUST_API_URL", "https://api.example.test")
    monkeypatch.setenv("BT_PIPELINES_START_DATE", "2025-06-01")
    resolved = config("/tmp/dev-lake").with_environment()
    assert resolved.destination == "s3://prod-lake/braintrust" and resolved.api_url == "https://api.example.test"
    assert resolved.projects[0].start_date == "2025-06-01"


def test_dg_check_defs_names_a_bad_setting(tmp_path):
    project = tmp_path / "userproj"
    (project / "userproj" / "defs" / "lake").mkdir(parents=True)
    (project / "userproj" / "__init__.py").write_text("")
    (project / "userproj" / "defs" / "__init__.py").write_text("")
    (project / "userproj" / "definitions.py").write_text(
        "from pathlib import Path\nimport dagster as dg\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "userproj"
        version = "0"
        [tool.dg]
        directory_type = "project"
        [tool.dg.project]
        root_module = "userproj"
        """))
    defs_yaml = project / "userproj" / "defs" / "lake" / "defs.yaml"

    def check(destination: str) -> subprocess.CompletedProcess:
        defs_yaml.write_text(textwrap.dedent(f"""
            type: bt_pipelines.BraintrustExportComponent
            attributes:
              destination: {destination}
              projects:
                - name: my-project
                  start_date: "2026-01-01"
            """))
        return subprocess.run([str(Path(sys.executable).parent / "dg"), "check", "defs"], cwd=project,
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(project), "DAGSTER_HOME": str(tmp_path)})

    bad = check("ftp://nowhere/lake")
    assert bad.returncode != 0
    assert "unknown scheme 'ftp'" in bad.stdout + bad.stderr
    good = check(str(tmp_path / "lake"))
    assert good.returncode == 0, good.stdout + good.stderr


def test_one_partition_run_records_its_rows_and_uri(bt, env, instance):
    lake = env / "lake"
    defs = build_definitions(config(lake))
    result = materialize(defs, instance, partition_key=DAYS[1].isoformat())
    assert result.success
    (event,) = result.asset_materializations_for_node(next(iter(defs.assets)).node_def.name)
    manifest = read_manifest(open_storage(str(lake)), _path(defs, DAYS[1]))
    metadata = event.metadata
    assert metadata["dagster/row_count"].value == manifest.rows > 0
    assert metadata["dagster/uri"].value == str(lake / _path(defs, DAYS[1]).folder)
    assert metadata["watermark"].value == manifest.watermark
    for name in ("files", "bytes", "pages", "retries", "duration_s", "rows_per_s"):
        assert name in metadata


def test_a_ranged_run_reports_each_partition_and_equals_the_source(bt, env, instance):
    lake = env / "lake"
    defs = build_definitions(config(lake))
    result = materialize(defs, instance, tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                                               "dagster/asset_partition_range_end": DAYS[-1].isoformat()})
    assert result.success
    events = result.asset_materializations_for_node(next(iter(defs.assets)).node_def.name)
    assert sorted(e.partition for e in events) == [d.isoformat() for d in DAYS]
    storage = open_storage(str(lake))
    project_id = bt.store.find_object("project", name="checkout-assistant", project_id=None)["id"]
    for event in events:
        day = datetime.fromisoformat(event.partition).date()
        assert event.metadata["dagster/row_count"].value == sum(lake_pairs(storage, _path(defs, day)).values())
        assert lake_pairs(storage, _path(defs, day)) == source_pairs(bt, project_id, day)


def test_an_unknown_project_fails_the_run_with_close_names_and_writes_nothing(bt, env, instance):
    lake = env / "lake"
    defs = build_definitions(config(lake, projects=("chekout-assistant",)))
    result = materialize(defs, instance, partition_key=DAYS[0].isoformat())
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    cause = failure.cause or failure
    assert cause.cls_name == "NotFoundError"
    assert "no project named 'chekout-assistant'" in cause.message
    assert "closest existing: 'checkout-assistant'" in cause.message
    assert not (lake / "project_logs").exists()


def test_the_api_key_stays_out_of_run_config_events_and_logs(bt, env, instance):
    defs = build_definitions(config(env / "lake"))
    result = materialize(defs, instance, partition_key=DAYS[2].isoformat())
    assert result.success
    records = instance.all_logs(result.run_id)
    assert records and not any(KEY in str(record) for record in records)
    assert KEY not in str(instance.get_run_by_id(result.run_id).run_config)


def _path(defs: dg.Definitions, day):
    from bt_pipelines.engine.sync import ExportTarget
    from bt_pipelines.sink.schema import PROJECT_LOGS

    return ExportTarget("project_logs", PROJECT_LOGS, "project_logs", "", "", (("project", "checkout-assistant"),)
                        ).day_path(day)
