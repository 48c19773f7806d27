"""Asset checks prove a partition right, and say what to do when it is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from bt_pipelines import ExportConfig, build_definitions
from bt_pipelines.emulator import emulator

from .conftest import use_emulator

KEY = "sk-checks-test-key"
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=1), TODAY]
LOGS = dg.AssetKey(["braintrust", "checkout-assistant", "project_logs"])


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=2, api_key=KEY) as running:
        yield running


@pytest.fixture
def setup(bt, monkeypatch, tmp_path, dagster_instance):
    use_emulator(monkeypatch, bt)
    config = ExportConfig(destination=str(tmp_path / "lake"), projects=[
        {"name": "checkout-assistant", "start_date": DAYS[0].isoformat()}], experiments=False, datasets=False,
        trace_summaries=False)
    return build_definitions(config), dagster_instance, tmp_path / "lake"


def checks_of(defs):
    return [c for c in defs.asset_checks if LOGS in {k.asset_key for k in c.check_keys}]


def run(defs, instance, **partition) -> dict[str, dg.AssetCheckEvaluation]:
    """Materialize the logs asset with its checks, as a run from the UI or the CLI does."""
    asset = next(a for a in defs.assets if a.key == LOGS)
    result = dg.materialize([asset, *checks_of(defs)], resources=defs.resources, instance=instance,
                            raise_on_error=False, **partition)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_materialized_partition_passes_every_check(setup):
    defs, instance, _ = setup
    evaluations = run(defs, instance, partition_key=DAYS[0].isoformat())
    assert set(evaluations) == {"matches_source", "unique_ids", "schema"}
    assert all(e.passed for e in evaluations.values()), {n: e.description for n, e in evaluations.items()}
    source = evaluations["matches_source"].metadata
    assert source["lake_rows"].value == source["source_rows"].value > 0


def test_a_ranged_run_checks_every_partition_of_its_range(setup):
    defs, instance, _ = setup
    evaluations = run(defs, instance, tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                                            "dagster/asset_partition_range_end": DAYS[1].isoformat()})
    assert all(e.passed for e in evaluations.values())
    assert {e.metadata["partitions"].value for e in evaluations.values()} == {2}


def test_failures_across_a_range_name_each_failing_partition():
    from bt_pipelines.engine.checks import CheckOutcome
    from bt_pipelines.orchestration.checks import _result

    result = _result({"2026-01-01": CheckOutcome(True, "fine"), "2026-01-02": CheckOutcome(False, "3 rows missing")})
    assert not result.passed
    assert result.description == "1 of 2 partitions fail: 2026-01-02: 3 rows missing"
    assert result.metadata["failed_partitions"].value == "2026-01-02"


def test_every_daily_asset_has_a_freshness_policy(setup):
    defs, _, _ = setup
    (spec,) = [s for s in defs.resolve_all_asset_specs() if s.key == LOGS]
    policy = spec.freshness_policy
    assert policy.warn_window.to_timedelta() == timedelta(hours=30)
    assert policy.fail_window.to_timedelta() == timedelta(hours=60)

