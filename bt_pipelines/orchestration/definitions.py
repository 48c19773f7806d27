"""Build Dagster Definitions from an ExportConfig: the plain-Python entry point for code users.

    from bt_pipelines import ExportConfig, build_definitions
    defs = build_definitions(ExportConfig(destination="s3://lake/braintrust", projects=[...]))
"""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_gcp import GCSResource

from .assets import BraintrustTranslator, build_project_assets
from .config import ExportConfig
from .resources import BraintrustResource, LakeResource
from .schedules import build_schedules
from .sensors import build_change_sensor, build_object_sensor


def build_resources(config: ExportConfig) -> dict[str, dg.ConfigurableResource]:
    return {
        "braintrust": BraintrustResource(api_url=config.api_url, api_key=dg.EnvVar(config.api_key_env),
                                         org_name=config.org_name),
        "lake": LakeResource(destination=config.destination,
                             s3=S3Resource(endpoint_url=config.s3_endpoint_url, region_name=config.s3_region),
                             gcs=GCSResource(project=config.gcs_project)),
    }


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
    from .preflight import build_preflight_job  # it builds on this module's resources

    return dg.Definitions(assets=assets, asset_checks=checks, sensors=sensors, schedules=schedules,
                          jobs=[build_preflight_job(config)],
                          resources=build_resources(config))
