"""Sensors that keep the lake following Braintrust.

Change sensor (one per project, for its daily assets): its cursor is the newest `_xact_id` it
has seen. Each tick asks one aggregate question per row shape: on which `created` days are
there rows with `_xact_id` above the cursor, how many, up to which `_xact_id`. It requests a
run for exactly those days (consecutive days in one ranged run) and moves the cursor to the
newest `_xact_id` in the answer. A first tick (no cursor) requests every day with rows.
While a run it requested is still queued or running it waits, so two runs never refresh the
same partition at once.

Object sensors (experiments, datasets): each tick, per project and kind: list the objects, ask
their versions (newest `_xact_id`) in as few queries as possible, then add partitions for new
objects, request a run for each new or changed one, and request a removal run for each object
that disappeared. The cursor holds one small entry per object: `{id: [key, version]}`.
"""

import json
from datetime import UTC, date, datetime

import dagster as dg

from ..engine.sync import contiguous_ranges
from ..source import queries
from ..source.catalog import resolve_projects
from ..source.client import BraintrustClient
from .assets import object_partitions
from .config import ExportConfig, ProjectConfig, definition_name
from .objects import KINDS, list_project_objects, object_versions
from .resources import BraintrustResource

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _status(config: ExportConfig) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if config.sensors_running else dg.DefaultSensorStatus.STOPPED


def change_sensor_name(config: ExportConfig, project: ProjectConfig) -> str:
    return definition_name(config, project, "changes_sensor")


def build_change_sensor(config: ExportConfig, project: ProjectConfig,
                        assets_by_shape: dict[str, list[dg.AssetKey]]) -> dg.SensorDefinition:
    """Requests runs of the project's daily assets for exactly the days whose rows changed."""
    name = change_sensor_name(config, project)
    every = [key for keys in assets_by_shape.values() for key in keys]

    @dg.sensor(name=name, minimum_interval_seconds=config.sensor_interval_seconds, asset_selection=every,
               default_status=_status(config),
               description=f"Refreshes the days of {project.name!r} whose rows changed since the last tick")
    def _sensor(context: dg.SensorEvaluationContext, braintrust: BraintrustResource) -> dg.SensorResult | dg.SkipReason:
        if context.instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": name}, statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason("a run this sensor requested is still queued or running; its days' later changes "
                                 "are requested once it ends")
        since = json.loads(context.cursor)["xact_id"] if context.cursor else None
        with braintrust.client() as client:
            found = resolve_projects(client, [project.name])[project.name]
            changed = {shape: _changed_days(client, found.id, shape, since) for shape in assets_by_shape}
        newest = max([since or "0", *(top for days in changed.values() for top in days.values())], key=int)
        requests = []
        today = datetime.now(UTC).date()
        for shape, days in changed.items():
            wanted = [d for d in days if project.start <= d <= today]
            for span in split_ranges(contiguous_ranges(wanted), config.max_partitions_per_run):
                key = f"{shape}:{since}:{newest}:{span[0]}"
                requests.append(range_request(assets_by_shape[shape], span, run_key=key,
                                              tags={"bt_pipelines/trigger": "changes"}))
        context.log.info(", ".join(f"{shape}: {len(days)} days changed" for shape, days in changed.items())
                         + f"; {len(requests)} runs requested; cursor {since} -> {newest}")
        return dg.SensorResult(run_requests=requests,
                               cursor=json.dumps({"xact_id": newest}) if newest != "0" else context.cursor)

    return _sensor


def _changed_days(client: BraintrustClient, project_id: str, shape: str, since: str | None) -> dict[date, str]:
    """Days with rows written after `since` (all days when None), each with its newest `_xact_id`."""
    where = queries.changed_since(since) if since else ""
    answer = client.btql(queries.days_summary("project_logs", project_id, where, shape))
    return {date.fromisoformat(row["day"][:10]): str(row["top"]) for row in answer.get("data") or [] if row["n"]}


def split_ranges(ranges: list[list[date]], most: int | None) -> list[list[date]]:
    """Ranges of consecutive days, none longer than `most` (the backfill policy's limit)."""
    if most is None:
        return ranges
    return [span[i : i + most] for span in ranges for i in range(0, len(span), most)]


def range_request(keys: list[dg.AssetKey], days: list[date], *, run_key: str | None = None,
                  tags: dict[str, str] | None = None) -> dg.RunRequest:
    """One run of `keys` over consecutive `days` (a single partition, or a ranged run)."""
    tags = dict(tags or {})
    if len(days) == 1:
        return dg.RunRequest(run_key=run_key, asset_selection=keys, partition_key=days[0].isoformat(), tags=tags)
    tags.update({RANGE_START: days[0].isoformat(), RANGE_END: days[-1].isoformat()})
    return dg.RunRequest(run_key=run_key, asset_selection=keys, tags=tags)

DELETED = "deleted"


def build_object_sensor(config: ExportConfig, project: ProjectConfig, table: str,
                        asset_key: dg.AssetKey) -> dg.SensorDefinition:
    partitions = object_partitions(config, project, table)

    @dg.sensor(name=f"{partitions.name}_sensor", minimum_interval_seconds=config.sensor_interval_seconds,
               asset_selection=[asset_key], default_status=_status(config),
               description=f"Exports new and changed {table} of {project.name!r}, and removes deleted ones")
    def _sensor(context: dg.SensorEvaluationContext, braintrust: BraintrustResource) -> dg.SensorResult:
        seen: dict[str, list[str | None]] = json.loads(context.cursor) if context.cursor else {}
        with braintrust.client() as client:
            found = resolve_projects(client, [project.name])[project.name]
            listing = list_project_objects(client, table, found)
            versions = object_versions(client, table, list(listing.by_key.values()))
        existing = set(context.instance.get_dynamic_partitions(partitions.name))
        requests, state = plan(listing.by_key, versions, seen, existing)
        new_keys = sorted(set(listing.by_key) - existing)
        context.log.info(f"{KINDS[table]}s: {len(listing.by_key)} found, {len(new_keys)} new, "
                         f"{len(requests)} runs requested")
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=json.dumps(state, sort_keys=True))

    return _sensor


def plan(by_key: dict, versions: dict[str, str | None], seen: dict[str, list[str | None]],
         existing: set[str]) -> tuple[list[dg.RunRequest], dict[str, list[str | None]]]:
    """Runs to request and the next cursor, from what exists now and what was seen before."""
    requests: list[dg.RunRequest] = []
    state: dict[str, list[str | None]] = {}
    for key, obj in sorted(by_key.items()):
        version = versions.get(obj.id)
        state[obj.id] = [key, version]
        if seen.get(obj.id) != [key, version] or key not in existing:
            requests.append(dg.RunRequest(partition_key=key, run_key=f"{obj.id}:{key}:{version}"))
    live_keys = set(by_key)
    for object_id, (key, version) in seen.items():
        if object_id in state or version == DELETED or key in live_keys:
            continue
        requests.append(dg.RunRequest(partition_key=key, run_key=f"{object_id}:{key}:{DELETED}",
                                      tags={"bt_pipelines/removal": "true"}))
        state[object_id] = [key, DELETED]
    return requests, state
