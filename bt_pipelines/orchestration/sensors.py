"""Sensors that keep experiments and datasets in the lake as they come, change and go.

Each tick, per project and kind: list the objects, ask their versions (newest `_xact_id`) in as
few queries as possible, then add partitions for new objects, request a run for each new or
changed one, and request a removal run for each object that disappeared. The cursor holds one
small entry per object: `{id: [key, version]}`.
"""

import json

import dagster as dg

from ..source.catalog import resolve_projects
from .assets import object_partitions
from .config import ExportConfig, ProjectConfig
from .objects import KINDS, list_project_objects, object_versions
from .resources import BraintrustResource

DELETED = "deleted"


def build_object_sensor(config: ExportConfig, project: ProjectConfig, table: str,
                        asset_key: dg.AssetKey) -> dg.SensorDefinition:
    partitions = object_partitions(config, project, table)
    status = dg.DefaultSensorStatus.RUNNING if config.sensors_running else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(name=f"{partitions.name}_sensor", minimum_interval_seconds=config.sensor_interval_seconds,
               asset_selection=[asset_key], default_status=status,
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
