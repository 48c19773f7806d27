"""Asset specs (through a translator you can subclass) and the assets that call the engine.

No `from __future__ import annotations` here: Dagster reads these annotations at runtime.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg

from ..engine.sync import ExportOptions, ExportResult, ExportTarget, export_days
from ..sink.layout import slugify
from ..sink.schema import PROJECT_LOGS, SCHEMA_VERSION, TableSchema
from ..sink.storage import parse_destination
from ..source.catalog import resolve_projects
from .config import ExportConfig, ProjectConfig
from .resources import BraintrustResource, LakeResource

POOL = "braintrust_api"
_STORAGE_KIND = {"file": "local", "s3": "s3", "gs": "gcs"}


@dataclass(frozen=True)
class TableProps:
    """What the translator sees about one exported table."""

    config: ExportConfig
    project: ProjectConfig
    table: str
    schema: TableSchema


class BraintrustTranslator:
    """Maps an exported table to its AssetSpec; override `get_asset_spec` to rename or regroup."""

    def get_asset_spec(self, props: TableProps) -> dg.AssetSpec:
        config, project = props.config, props.project
        storage = _STORAGE_KIND[parse_destination(config.destination)[0]]
        return dg.AssetSpec(
            key=dg.AssetKey([config.key_prefix, project.key, props.table]),
            group_name=config.group_name,
            kinds={"braintrust", config.format, storage},
            description=f"Braintrust {props.table} of project {project.name!r}, one partition per UTC day of "
                        f"`created`, in {config.destination}/{props.table}/project={project.key}/date=YYYY-MM-DD/",
            metadata={"bt_pipelines/project": project.name, "bt_pipelines/table": props.table,
                      "bt_pipelines/schema_version": SCHEMA_VERSION,
                      "dagster/column_schema": _column_schema(props.schema)},
        )


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.kind, description=c.doc) for c in schema.columns])


def partitions_for(project: ProjectConfig) -> dg.DailyPartitionsDefinition:
    """UTC days from the project's start date up to and including today."""
    return dg.DailyPartitionsDefinition(start_date=project.start_date, timezone="UTC", end_offset=1)


def backfill_policy(config: ExportConfig) -> dg.BackfillPolicy:
    if config.max_partitions_per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=config.max_partitions_per_run)


def build_project_logs_asset(config: ExportConfig, project: ProjectConfig,
                             translator: BraintrustTranslator | None = None) -> dg.AssetsDefinition:
    spec = (translator or BraintrustTranslator()).get_asset_spec(TableProps(config, project, "project_logs",
                                                                           PROJECT_LOGS))

    @dg.multi_asset(
        name="__".join(p.replace("-", "_") for p in spec.key.path),
        specs=[spec],
        partitions_def=partitions_for(project),
        backfill_policy=backfill_policy(config),
        pool=POOL,
    )
    def _project_logs(context: dg.AssetExecutionContext, braintrust: BraintrustResource,
                      lake: LakeResource) -> dg.MaterializeResult:
        return export_partitions(context, braintrust, lake, config, project, PROJECT_LOGS)

    return _project_logs


def window_days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def export_partitions(context: dg.AssetExecutionContext, braintrust: BraintrustResource, lake: LakeResource,
                      config: ExportConfig, project: ProjectConfig, schema: TableSchema) -> dg.MaterializeResult:
    """Map the run's partitions to days, call the engine, and report per partition."""
    days = window_days(context)
    context.log.info(f"exporting {schema.table} of {project.name!r} for {days[0]}..{days[-1]} ({len(days)} days)")
    with braintrust.client() as client:
        found = resolve_projects(client, [project.name])[project.name]
        target = ExportTarget(schema.table, schema, "project_logs", found.id, found.name,
                              (("project", project.key or slugify(found.name)),))
        options = ExportOptions(format=config.format, target_file_bytes=config.file_size_mb * 1024 * 1024,
                                page_size=config.page_size, run_id=context.run.run_id)
        result = export_days(client, lake.storage(), target, days, options,
                             on_progress=lambda p: context.log.info(_progress_line(p)))
    for partition in result.partitions:
        context.add_asset_metadata(_partition_metadata(partition), partition_key=partition.day.isoformat())
    context.log.info(_summary_line(result))
    return dg.MaterializeResult(metadata=_run_metadata(result))


def _partition_metadata(partition: Any) -> dict[str, Any]:
    manifest = partition.manifest
    return {
        "dagster/row_count": manifest.rows,
        "dagster/uri": dg.MetadataValue.path(partition.uri),
        "files": len(manifest.files),
        "bytes": manifest.bytes,
        "watermark": manifest.watermark or "",
        "min_created": manifest.min_created or "",
        "max_created": manifest.max_created or "",
        "stale_files_removed": len(partition.removed),
    }


def _run_metadata(result: ExportResult) -> dict[str, Any]:
    return {
        "run_rows": result.rows_written,
        "pages": result.pages,
        "retries": result.retries,
        "heavy_pages": result.heavy_pages,
        "duration_s": round(result.seconds, 3),
        "rows_per_s": round(result.rows_read / result.seconds, 1) if result.seconds else 0.0,
        "watermark": result.watermark or "",
    }


def _progress_line(progress: dict[str, Any]) -> str:
    return (f"progress: {progress['rows']:,} rows in {progress['pages']} pages, {progress['rows_per_s']:,.0f} rows/s, "
            f"{progress['retries']} retries, at {progress['current_day']}")


def _summary_line(result: ExportResult) -> str:
    return (f"done: {result.rows_written:,} rows into {len(result.partitions)} partitions, "
            f"{sum(len(p.manifest.files) for p in result.partitions)} files, {result.pages} pages, "
            f"{result.retries} retries, {result.seconds:.1f}s")
