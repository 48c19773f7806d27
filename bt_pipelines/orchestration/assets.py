"""Asset specs (through a translator you can subclass) and the assets that call the engine.

Per project: `project_logs`, `project_logs_traces` and each custom export are daily-partitioned;
`experiments` and `datasets` have one dynamic partition per object; their catalogs are
unpartitioned tables rewritten on each run.

No `from __future__ import annotations` here: Dagster reads these annotations at runtime.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import dagster as dg

from ..engine.sync import (
    ExportOptions,
    ExportResult,
    ExportTarget,
    PartitionResult,
    export_days,
    export_object,
    remove_object,
    write_snapshot,
)
from ..sink.layout import PartitionPath
from ..sink.schema import (
    DATASETS,
    DATASETS_CATALOG,
    EXPERIMENTS,
    EXPERIMENTS_CATALOG,
    PROJECT_LOGS,
    SCHEMA_VERSION,
    TRACE_SUMMARIES,
    TableSchema,
)
from ..sink.storage import parse_destination
from ..source.catalog import BraintrustObject, resolve_projects
from ..source.client import BraintrustClient
from ..source.errors import QueryRejected
from .checks import Unit, build_partition_checks
from .config import CustomExport, ExportConfig, ProjectConfig, definition_name
from .objects import KINDS, list_project_objects, object_counts
from .resources import BraintrustResource, LakeResource

POOL = "braintrust_api"
PARTITIONING_TAG = "bt_pipelines/partitioning"  # select a group at once: tag:bt_pipelines/partitioning=daily
FULL_REFRESH_TAG = "bt_pipelines/full_refresh"  # "true": read the run's partitions whole (a rewind)
RECONCILE_TAG = "bt_pipelines/reconcile"  # "true": also check partitions with nothing new against the source
_STORAGE_KIND = {"file": "local", "s3": "s3", "gs": "gcs"}
_DESCRIPTIONS = {
    "project_logs": "logs (one row per span)",
    "project_logs_traces": "trace summaries (one row per trace, by its root span's day)",
    "experiments": "experiment rows (one partition per experiment)",
    "datasets": "dataset records (one partition per dataset, at a pinned version)",
    "experiments_catalog": "catalog of experiments (one row each, rewritten every run)",
    "datasets_catalog": "catalog of datasets (one row each, rewritten every run)",
}


@dataclass(frozen=True)
class Built:
    """One exported table's asset and its checks."""

    asset: dg.AssetsDefinition
    checks: list[dg.AssetChecksDefinition]
    changes_shape: str | None = None  # daily assets: spans | summary, the rows whose changes it follows


class RunMode(dg.Config):
    """How a run reads its partitions (the tags `bt_pipelines/full_refresh` and `bt_pipelines/reconcile`
    set the same)."""

    full_refresh: bool = False
    reconcile: bool = False


@dataclass(frozen=True)
class TableProps:
    """What the translator sees about one exported table."""

    config: ExportConfig
    project: ProjectConfig
    table: str
    schema: TableSchema
    description: str
    partitioning: str  # daily | object | none


class BraintrustTranslator:
    """Maps an exported table to its AssetSpec; override `get_asset_spec` to rename or regroup."""

    def get_asset_spec(self, props: TableProps) -> dg.AssetSpec:
        config, project = props.config, props.project
        storage = _STORAGE_KIND[parse_destination(config.destination)[0]]
        freshness = None
        if props.partitioning == "daily":  # a day without a run is news: warn, then fail after twice as long
            window = timedelta(hours=config.freshness_hours)
            freshness = dg.FreshnessPolicy.time_window(warn_window=window, fail_window=2 * window)
        return dg.AssetSpec(
            key=dg.AssetKey([config.key_prefix, project.key, props.table]),
            freshness_policy=freshness,
            group_name=config.group_name,
            kinds={"braintrust", config.format, storage},
            description=f"Braintrust {props.description} of project {project.name!r}, in "
                        f"{config.destination}/{props.table}/project={project.key}/",
            tags={PARTITIONING_TAG: props.partitioning},
            metadata={"bt_pipelines/project": project.name, "bt_pipelines/table": props.table,
                      "bt_pipelines/schema_version": SCHEMA_VERSION,
                      "dagster/column_schema": _column_schema(props.schema)},
        )


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.kind, description=c.doc) for c in schema.columns])


def daily_partitions(project: ProjectConfig) -> dg.DailyPartitionsDefinition:
    """UTC days from the project's start date up to and including today."""
    return dg.DailyPartitionsDefinition(start_date=project.start_date, timezone="UTC", end_offset=1)


def object_partitions(config: ExportConfig, project: ProjectConfig, table: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=definition_name(config, project, table))


def backfill_policy(config: ExportConfig) -> dg.BackfillPolicy:
    if config.max_partitions_per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=config.max_partitions_per_run)


def _options(config: ExportConfig, context: dg.AssetExecutionContext, mode: RunMode | None = None) -> ExportOptions:
    tags = context.run.tags
    full_refresh = config.full_refresh or _on(tags.get(FULL_REFRESH_TAG)) or bool(mode and mode.full_refresh)
    reconcile = _on(tags.get(RECONCILE_TAG)) or bool(mode and mode.reconcile)
    return ExportOptions(format=config.format, target_file_bytes=config.file_size_mb * 1024 * 1024,
                         page_size=config.page_size, read_streams=config.read_streams, run_id=context.run.run_id,
                         full_refresh=full_refresh, reconcile=reconcile)


def _on(tag: str | None) -> bool:
    if tag is None:
        return False
    if tag.lower() in ("true", "1", "yes"):
        return True
    if tag.lower() in ("false", "0", "no", ""):
        return False
    raise dg.Failure(description=f"run tag value {tag!r} is not true or false: set {FULL_REFRESH_TAG} or "
                                 f"{RECONCILE_TAG} to true or false")


def _spec(config: ExportConfig, project: ProjectConfig, table: str, schema: TableSchema,
          translator: BraintrustTranslator | None, partitioning: str, description: str | None = None) -> dg.AssetSpec:
    props = TableProps(config, project, table, schema, description or _DESCRIPTIONS[table], partitioning)
    return (translator or BraintrustTranslator()).get_asset_spec(props)


def _op_name(spec: dg.AssetSpec) -> str:
    return "__".join(p.replace("-", "_") for p in spec.key.path)


def _resolve_project(client: BraintrustClient, project: ProjectConfig) -> BraintrustObject:
    return resolve_projects(client, [project.name])[project.name]


# -- builders --------------------------------------------------------------------------------------
def build_project_assets(config: ExportConfig, project: ProjectConfig,
                         translator: BraintrustTranslator | None = None) -> dict[str, Built]:
    """Every asset of one project (with its checks), by lake table name."""
    assets = {"project_logs": build_daily_asset(config, project, "project_logs", PROJECT_LOGS, translator)}
    if config.trace_summaries:
        assets["project_logs_traces"] = build_daily_asset(config, project, "project_logs_traces", TRACE_SUMMARIES,
                                                          translator, shape="summary")
    for export in config.exports:
        assets[export.name] = build_custom_export_asset(config, project, export, translator)
    for table, enabled in (("experiments", config.experiments), ("datasets", config.datasets)):
        if enabled:
            assets[table] = build_object_asset(config, project, table, translator)
            assets[f"{table}_catalog"] = build_catalog_asset(config, project, table, translator)
    return assets


def build_custom_export_asset(config: ExportConfig, project: ProjectConfig, export: CustomExport,
                              translator: BraintrustTranslator | None = None) -> Built:
    what = "whole traces with a span matching" if export.whole_traces else "spans matching"
    description = f"logs: {what} `{export.filter}`"
    return build_daily_asset(config, project, export.name, PROJECT_LOGS, translator, description=description,
                             filter=export.filter, whole_traces=export.whole_traces,
                             trace_grace=timedelta(hours=export.trace_grace_hours))


def build_daily_asset(config: ExportConfig, project: ProjectConfig, table: str, schema: TableSchema,
                      translator: BraintrustTranslator | None = None, description: str | None = None,
                      **target_fields: Any) -> Built:
    spec = _spec(config, project, table, schema, translator, "daily", description)
    partitions = daily_partitions(project)

    layout = ExportTarget(table, schema, "project_logs", "", project.name, (("project", project.key),),
                          **target_fields)  # where its partitions go, and which changes it follows: no API needed

    def target_of(found: BraintrustObject) -> ExportTarget:
        return replace(layout, object_id=found.id, object_name=found.name)

    def paths_of(keys: list[str]) -> list[tuple[str, PartitionPath]]:
        return [(k, layout.day_path(date.fromisoformat(k))) for k in keys]

    def units_of(client: BraintrustClient, keys: list[str]) -> list[Unit]:
        target = target_of(_resolve_project(client, project))
        return [Unit(k, target.day_path(date.fromisoformat(k)), date.fromisoformat(k), target) for k in keys]

    export_config = config  # the asset's own `config` parameter is its run's RunMode

    @dg.multi_asset(name=_op_name(spec), specs=[spec], partitions_def=partitions,
                    backfill_policy=backfill_policy(config), pool=POOL)
    def _daily(context: dg.AssetExecutionContext, config: RunMode, braintrust: BraintrustResource,
               lake: LakeResource) -> dg.MaterializeResult:
        days = window_days(context)
        options = _options(export_config, context, config)
        context.log.info(f"exporting {table} of {project.name!r} for {days[0]}..{days[-1]} ({len(days)} days, "
                         f"{_mode_name(options)})")
        with braintrust.client() as client:
            target = target_of(_resolve_project(client, project))
            result = _run(context, spec, lambda: export_days(client, lake.storage(), target, days, options,
                                                             _progress_logger(context)))
        for partition in result.partitions:
            context.add_asset_metadata(_partition_metadata(partition), partition_key=partition.day.isoformat())
        return dg.MaterializeResult(metadata=_run_metadata(result))

    checks = build_partition_checks(spec.key, partitions, schema, paths_of, units_of)
    return Built(_daily, checks, layout.changes_shape)


def build_object_asset(config: ExportConfig, project: ProjectConfig, table: str,
                       translator: BraintrustTranslator | None = None) -> Built:
    schema = EXPERIMENTS if table == "experiments" else DATASETS
    spec = _spec(config, project, table, schema, translator, "object")
    kind = KINDS[table]
    partitions = object_partitions(config, project, table)

    def target_of(key: str, obj: BraintrustObject | None) -> ExportTarget:
        return ExportTarget(table, schema, kind, obj.id if obj else "", obj.name if obj else key,
                            (("project", project.key), (kind, key)))

    def paths_of(keys: list[str]) -> list[tuple[str, PartitionPath]]:
        return [(key, target_of(key, None).object_path()) for key in keys]

    def units_of(client: BraintrustClient, keys: list[str]) -> list[Unit]:
        listing = list_project_objects(client, table, _resolve_project(client, project))
        targets = {key: target_of(key, listing.by_key.get(key)) for key in keys}
        return [Unit(key, target.object_path(), None, target) for key, target in targets.items()]

    export_config = config  # the asset's own `config` parameter is its run's RunMode

    @dg.multi_asset(name=_op_name(spec), specs=[spec], partitions_def=partitions,
                    backfill_policy=backfill_policy(config), pool=POOL)
    def _objects(context: dg.AssetExecutionContext, config: RunMode, braintrust: BraintrustResource,
                 lake: LakeResource) -> dg.MaterializeResult:
        options = _options(export_config, context, config)
        totals = ExportResult()
        with braintrust.client() as client:
            listing = list_project_objects(client, table, _resolve_project(client, project))
            for key in context.partition_keys:
                obj = listing.by_key.get(key)
                target = target_of(key, obj)
                if obj is None:
                    context.log.warning(f"{kind} {key!r} no longer exists in Braintrust: removing it from the lake")
                    partition = remove_object(lake.storage(), target, options)
                    context.add_asset_metadata({**_partition_metadata(partition), "deleted": True}, partition_key=key)
                    continue
                result = _run(context, spec, lambda t=target: export_object(client, lake.storage(), t, options))
                totals.add(result)
                context.add_asset_metadata({**_partition_metadata(result.partitions[0]), f"{kind}_id": obj.id,
                                            f"{kind}_name": obj.name, "deleted": False}, partition_key=key)
        return dg.MaterializeResult(metadata=_run_metadata(totals))

    return Built(_objects, build_partition_checks(spec.key, partitions, schema, paths_of, units_of))


def build_catalog_asset(config: ExportConfig, project: ProjectConfig, table: str,
                        translator: BraintrustTranslator | None = None) -> Built:
    schema = EXPERIMENTS_CATALOG if table == "experiments" else DATASETS_CATALOG
    spec = _spec(config, project, schema.table, schema, translator, "none")
    path = PartitionPath(schema.table, (("project", project.key),))

    @dg.multi_asset(name=_op_name(spec), specs=[spec], pool=POOL)
    def _catalog(context: dg.AssetExecutionContext, braintrust: BraintrustResource,
                 lake: LakeResource) -> dg.MaterializeResult:
        with braintrust.client() as client:
            listing = list_project_objects(client, table, _resolve_project(client, project))
            rows = [_catalog_row(client, table, key, obj) for key, obj in listing.by_key.items()]
        partition = write_snapshot(lake.storage(), path, schema, rows,
                                   {"kind": KINDS[table], "project_id": listing.project.id},
                                   _options(config, context))
        return dg.MaterializeResult(metadata=_partition_metadata(partition))

    checks = build_partition_checks(spec.key, None, schema, lambda keys: [("", path)])
    return Built(_catalog, checks)


def _catalog_row(client: BraintrustClient, table: str, key: str, obj: BraintrustObject) -> dict[str, Any]:
    rows, version = object_counts(client, table, obj)
    row = {**obj.raw, "rows": rows, "_xact_id": version, "lake_key": key}
    if table == "experiments":
        summary = client.get_json(f"/v1/experiment/{obj.id}/summarize", {"summarize_scores": "true"})
        row["scores"] = {name: s.get("score") for name, s in (summary.get("scores") or {}).items()}
    return row


# -- running and reporting -------------------------------------------------------------------------
def window_days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _mode_name(options: ExportOptions) -> str:
    if options.full_refresh:
        return "full refresh"
    return "incremental, with reconcile" if options.reconcile else "incremental"


def _run(context: dg.AssetExecutionContext, spec: dg.AssetSpec, export: Callable[[], ExportResult]) -> ExportResult:
    """Run an export; a query Braintrust refuses (a bad filter) names the asset."""
    try:
        result = export()
    except QueryRejected as exc:
        raise dg.Failure(
            description=f"asset {spec.key.to_user_string()}: Braintrust rejected the query: {exc.server_message}",
            metadata={"query": exc.query}) from exc
    context.log.info(_summary_line(result))
    return result


def _progress_logger(context: dg.AssetExecutionContext) -> Callable[[dict[str, Any]], None]:
    def log(progress: dict[str, Any]) -> None:
        context.log.info(f"progress: {progress['rows']:,} rows in {progress['pages']} pages, "
                         f"{progress['rows_per_s']:,.0f} rows/s, {progress['retries']} retries, "
                         f"at {progress['current_day']}")
    return log


def _partition_metadata(partition: PartitionResult) -> dict[str, Any]:
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
        "mode": partition.mode,
        "rows_changed": partition.rows_changed,
    }


def _run_metadata(result: ExportResult) -> dict[str, Any]:
    return {
        "run_rows": result.rows_written,
        "rows_read": result.rows_read,
        "rows_changed": result.rows_changed,
        "files_rewritten": result.files_rewritten,
        "files_compacted": result.files_compacted,
        "read_whole_after_count_mismatch": ", ".join(result.reconciled),
        "pages": result.pages,
        "retries": result.retries,
        "heavy_pages": result.heavy_pages,
        "duplicates_dropped": result.duplicates_dropped,
        "stale_versions_replaced": result.stale_replaced,
        "duration_s": round(result.seconds, 3),
        "rows_per_s": round(result.rows_read / result.seconds, 1) if result.seconds else 0.0,
        "watermark": result.watermark or "",
    }


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _summary_line(result: ExportResult) -> str:
    return (f"done: {len(result.partitions)} partitions ({result.modes()}) holding {result.rows_written:,} rows in "
            f"{sum(len(p.manifest.files) for p in result.partitions)} files; {result.rows_read:,} rows read in "
            f"{result.pages} pages, {result.rows_changed:,} changed, {_files(result.files_rewritten)} rewritten, "
            f"{result.retries} retries, {result.seconds:.1f}s")

