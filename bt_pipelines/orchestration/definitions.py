"""Build Dagster Definitions from an ExportConfig: the plain-Python entry point for code users.

    from bt_pipelines import ExportConfig, build_definitions
    defs = build_definitions(ExportConfig(destination="s3://lake/braintrust", projects=[...]))
"""

from __future__ import annotations

import dagster as dg

from .assets import BraintrustTranslator, build_project_assets
from .config import ExportConfig
from .preflight import build_preflight_job
from .resources import build_resources
from .schedules import build_schedules
from .sensors import build_change_sensor, build_object_sensor


def build_definitions(config: ExportConfig, translator: BraintrustTranslator | None = None) -> dg.Definitions:
    config = config.with_environment()
    assets, checks, sensors, schedules = [], [], [], []
    for project in config.projects:
        built = build_project_assets(config, project, translator)
        for table in built.values():
            assets.append(table.asset)
            checks += table.checks
        sensors += [build_object_sensor(config, project, table, built[table].asset.key)
                    for table in ("experiments", "datasets") if table in built]
        by_shape: dict[str, list[dg.AssetKey]] = {}
        for table in built.values():
            if table.changes_shape:
                by_shape.setdefault(table.changes_shape, []).append(table.asset.key)
        sensors.append(build_change_sensor(config, project, by_shape))
        schedules += build_schedules(config, project, [key for keys in by_shape.values() for key in keys])
    return dg.Definitions(assets=assets, asset_checks=checks, sensors=sensors, schedules=schedules,
                          jobs=[build_preflight_job(config)],
                          resources=build_resources(config))
