"""The lake follows Braintrust through a real Dagster instance: the change sensor, its runs, the
schedules that close yesterday and reconcile, and full refreshes (rewinds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from bt_pipelines import ExportConfig, build_definitions
from bt_pipelines.emulator import emulator
from bt_pipelines.orchestration.local_runner import execute, tick
from bt_pipelines.sink.layout import PartitionPath
from bt_pipelines.sink.manifest import read_manifest
from bt_pipelines.sink.storage import open_storage

from ..lakeview import edit_manifest, lake_pairs, source_pairs
from .conftest import use_emulator

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=i) for i in reversed(range(4))]
SENSOR = "braintrust__checkout_assistant__changes_sensor"
SHAPES = {"spans": [dg.AssetKey(["braintrust", "checkout-assistant", "project_logs"])],
          "summary": [dg.AssetKey(["braintrust", "checkout-assistant", "project_logs_traces"])]}


@pytest.fixture
def bt():
    with emulator(seed="demo", days=4) as running:
        yield running


@pytest.fixture
def setup(bt, monkeypatch, tmp_path, dagster_instance):
    use_emulator(monkeypatch, bt)
    config = ExportConfig(destination=str(tmp_path / "lake"), experiments=False, datasets=False,
                          projects=[{"name": "checkout-assistant", "start_date": DAYS[0].isoformat()}])
    return build_definitions(config), dagster_instance, open_storage(str(tmp_path / "lake")), bt


def project_id(bt) -> str:
    return bt.store.list_objects("project", name="checkout-assistant")[0]["id"]


def partition_days(request: dg.RunRequest) -> list[str]:
    if request.partition_key:
        return [request.partition_key]
    start = request.tags["dagster/asset_partition_range_start"]
    end = request.tags["dagster/asset_partition_range_end"]
    return [d.isoformat() for d in DAYS if start <= d.isoformat() <= end]


def _path(day) -> PartitionPath:
    return PartitionPath("project_logs", (("project", "checkout-assistant"), ("date", day.isoformat())))


def assert_logs_equal_source(storage, bt) -> None:
    for day in DAYS:
        source = source_pairs(bt, project_id(bt), day)
        assert lake_pairs(storage, _path(day)) == source, day
        assert read_manifest(storage, _path(day)).rows == sum(source.values()), day


def test_the_first_tick_requests_every_day_then_only_the_days_that_changed(setup):
    defs, instance, storage, bt = setup
    requests, cursor = tick(defs, instance, SENSOR, None)
    assert {tuple(r.asset_selection): partition_days(r) for r in requests} == {
        tuple(SHAPES["spans"]): [d.isoformat() for d in DAYS], tuple(SHAPES["summary"]): [d.isoformat() for d in DAYS]}
    for request in requests:
        assert execute(defs, instance, request, SENSOR).success
    assert_logs_equal_source(storage, bt)

    assert tick(defs, instance, SENSOR, cursor)[0] == []  # nothing new: no run
    pid = project_id(bt)
    bt.store.write([("project_logs", pid, {"id": "late-one", "created": f"{DAYS[0]}T10:00:00Z"}),
                    ("project_logs", pid, {"id": "late-two", "created": f"{DAYS[2]}T10:00:00Z"})])
    requests, cursor = tick(defs, instance, SENSOR, cursor)
    assert sorted(partition_days(r)[0] for r in requests if r.asset_selection == SHAPES["spans"]) == [
        DAYS[0].isoformat(), DAYS[2].isoformat()]
    results = [execute(defs, instance, r, SENSOR) for r in requests]
    logs = [r for r, req in zip(results, requests, strict=True) if req.asset_selection == SHAPES["spans"]]
    assert sum(r.get_asset_materialization_events()[0].materialization.metadata["rows_read"].value
               for r in logs) == 2  # two rows changed, two rows read
    assert_logs_equal_source(storage, bt)
    assert tick(defs, instance, SENSOR, cursor)[0] == []


def test_a_tick_waits_while_a_run_it_requested_is_still_in_flight(setup):
    defs, instance, _, _ = setup
    instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id="in-flight", status=dg.DagsterRunStatus.STARTED,
                                   tags={"dagster/sensor_name": SENSOR}))
    requests, cursor = tick(defs, instance, SENSOR, '{"xact_id": "0"}')
    assert requests == [] and cursor == '{"xact_id": "0"}'


def test_a_full_refresh_run_reads_its_partitions_whole_and_a_plain_run_only_what_changed(setup):
    defs, instance, storage, bt = setup
    logs = SHAPES["spans"]
    day = DAYS[1].isoformat()
    assert execute(defs, instance, dg.RunRequest(asset_selection=logs, partition_key=day)).success
    plain = execute(defs, instance, dg.RunRequest(asset_selection=logs, partition_key=day))
    full = execute(defs, instance, dg.RunRequest(asset_selection=logs, partition_key=day,
                                                 tags={"bt_pipelines/full_refresh": "true"}))
    modes = [r.get_asset_materialization_events()[0].materialization.metadata for r in (plain, full)]
    assert [m["rows_read"].value for m in modes] == [0, read_manifest(storage, _path(DAYS[1])).rows]
    run_config = {"ops": {"braintrust__checkout_assistant__project_logs": {"config": {"full_refresh": True}}}}
    by_config = dg.materialize(list(defs.assets), selection=logs, partition_key=day, instance=instance,
                               resources=defs.resources, run_config=run_config)
    assert by_config.get_asset_materialization_events()[0].materialization.metadata["rows_read"].value > 0


def test_a_rewind_of_three_days_leaves_exactly_the_source_rows(setup):
    defs, instance, storage, bt = setup
    requests, _ = tick(defs, instance, SENSOR, None)
    for request in requests:
        assert execute(defs, instance, request, SENSOR).success
    pid = project_id(bt)
    doomed = sorted(lake_pairs(storage, _path(DAYS[1])))[0][0]
    bt.store.write([("project_logs", pid, {"id": doomed, "_object_delete": True}),
                    ("project_logs", pid, {"id": "rewound", "created": f"{DAYS[2]}T03:00:00Z"})])
    rewind = dg.RunRequest(asset_selection=SHAPES["spans"], tags={
        "dagster/asset_partition_range_start": DAYS[1].isoformat(),
        "dagster/asset_partition_range_end": DAYS[3].isoformat(), "bt_pipelines/full_refresh": "true"})
    result = execute(defs, instance, rewind)
    assert result.success
    events = result.get_asset_materialization_events()
    assert {e.materialization.metadata["mode"].value for e in events} == {"full"}  # read whole, not refreshed
    assert_logs_equal_source(storage, bt)


def schedule_context(defs, instance, at) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(instance, scheduled_execution_time=at, repository_def=defs.get_repository_def())


def test_the_schedules_close_yesterday_and_reconcile_the_last_days(setup):
    defs, instance, storage, bt = setup
    at = datetime.combine(DAYS[-1], datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
    close = defs.resolve_schedule_def("braintrust__checkout_assistant__close_yesterday")
    [request] = close.evaluate_tick(schedule_context(defs, instance, at)).run_requests
    assert request.partition_key == DAYS[-2].isoformat() and set(request.asset_selection) == {
        *SHAPES["spans"], *SHAPES["summary"]}

    for request in tick(defs, instance, SENSOR, None)[0]:
        assert execute(defs, instance, request, SENSOR).success
    # Lose a file of the lake: nothing is written to Braintrust, so only a reconcile can notice.
    lost = edit_manifest(storage, _path(DAYS[0]), lambda m: m.files.pop())
    storage.delete([lost.key])
    broken = lake_pairs(storage, _path(DAYS[0]))
    plain = dg.RunRequest(asset_selection=SHAPES["spans"], partition_key=DAYS[0].isoformat())
    assert execute(defs, instance, plain).success
    assert lake_pairs(storage, _path(DAYS[0])) == broken  # nothing new: an ordinary run reads nothing
    reconcile = defs.resolve_schedule_def("braintrust__checkout_assistant__reconcile")
    [request] = reconcile.evaluate_tick(schedule_context(defs, instance, at)).run_requests
    assert partition_days(request) == [d.isoformat() for d in DAYS]  # the start date cuts the 7 days to 4
    assert request.tags["bt_pipelines/reconcile"] == "true"
    assert execute(defs, instance, request).success
    assert_logs_equal_source(storage, bt)


def test_a_run_tag_that_is_not_true_or_false_fails_the_run_and_names_the_tag(setup):
    defs, instance, storage, _ = setup
    result = dg.materialize(list(defs.assets), selection=SHAPES["spans"], partition_key=DAYS[0].isoformat(),
                            instance=instance, resources=defs.resources, raise_on_error=False,
                            tags={"bt_pipelines/full_refresh": "please"})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "'please' is not true or false: set bt_pipelines/full_refresh" in failure.event_specific_data.error.message
    assert read_manifest(storage, _path(DAYS[0])) is None
