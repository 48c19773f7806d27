"""Tick a sensor and carry out its run requests in this process, on a given Dagster instance.

What the Dagster daemon does, without a daemon: for tests (yours and ours), benchmarks, and
scripts that keep a lake in sync from CI. Runs are real runs of the instance, with the tags the
daemon would give them.
"""

from __future__ import annotations

import dagster as dg


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str,
         cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    """Evaluate the sensor once: the runs it requests, and its next cursor."""
    sensor = defs.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=sensor_name,
                                 resources=defs.resources, definitions=defs) as context:
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.run_requests or []), result.cursor if result.cursor is not None else cursor


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest,
            sensor_name: str | None = None) -> dg.ExecuteInProcessResult:
    """Carry out one run request to its end (a failed run raises)."""
    tags = {**request.tags, **({"dagster/sensor_name": sensor_name} if sensor_name else {})}
    if request.run_key:
        tags["dagster/run_key"] = request.run_key
    selection = list(request.asset_selection) if request.asset_selection else None
    return dg.materialize(list(defs.assets), selection=selection, partition_key=request.partition_key, tags=tags,
                          instance=instance, resources=defs.resources)
