"""Register experiment and dataset partitions without a daemon: one tick of each object sensor.

For CI and scripts: `bt-pipelines discover` adds a dynamic partition for every experiment and
dataset the sensors would find, in the Dagster instance of `$DAGSTER_HOME`. After it,
`dagster asset materialize --partition-range <first>...<last>` can export them.
"""

from importlib import import_module

import dagster as dg

from .objects import KINDS


def discover(module: str = "bt_pipelines.definitions",
             instance: dg.DagsterInstance | None = None) -> dict[str, list[str]]:
    """Partition keys per experiments/datasets asset (`braintrust/<project>/experiments`)."""
    defs: dg.Definitions = import_module(module).defs
    braintrust = defs.resources["braintrust"].process_config_and_initialize()
    instance = instance or dg.DagsterInstance.get()
    found: dict[str, list[str]] = {}
    for sensor in defs.sensors or []:
        if not sensor.name.endswith(tuple(f"__{table}_sensor" for table in KINDS)):
            continue
        result = sensor(dg.build_sensor_context(instance=instance, resources={"braintrust": braintrust}))
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        name = sensor.name.removesuffix("_sensor")
        found[_asset_of(defs, name)] = list(instance.get_dynamic_partitions(name))
    return found


def _asset_of(defs: dg.Definitions, partitions_name: str) -> str:
    for asset in defs.assets or []:
        partitions = getattr(asset, "partitions_def", None)
        if isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name == partitions_name:
            return asset.key.to_user_string()
    raise LookupError(f"no asset is partitioned by {partitions_name!r}")
