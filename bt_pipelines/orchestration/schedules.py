"""Schedules of a project's daily assets: close yesterday after midnight, reconcile recent days.

- close yesterday (`close_day_cron`, default 00:30 UTC): an incremental run of yesterday, for
  rows that arrived after the change sensor's last look at it;
- reconcile (`reconcile_cron`, default 02:00 UTC): one run over the last `reconcile_days` days
  tagged `bt_pipelines/reconcile=true`: every partition's row count is checked against the
  source's, and those that differ (deleted rows, say) are read whole.
"""

from datetime import date, timedelta

import dagster as dg

from .assets import RECONCILE_TAG
from .config import ExportConfig, ProjectConfig, definition_name
from .sensors import range_request, split_ranges


def _status(config: ExportConfig) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if config.sensors_running else dg.DefaultScheduleStatus.STOPPED


def recent_days(project: ProjectConfig, today: date, count: int) -> list[date]:
    """The last `count` days up to `today`, none before the project's start date."""
    first = max(project.start, today - timedelta(days=count - 1))
    return [first + timedelta(days=i) for i in range((today - first).days + 1)]


def build_schedules(config: ExportConfig, project: ProjectConfig,
                    keys: list[dg.AssetKey]) -> list[dg.ScheduleDefinition]:
    @dg.schedule(name=definition_name(config, project, "close_yesterday"), cron_schedule=config.close_day_cron,
                 execution_timezone="UTC", target=keys, default_status=_status(config),
                 description=f"Refreshes yesterday's partitions of {project.name!r} once more, for late rows")
    def _close_yesterday(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        if yesterday < project.start:
            return []
        return [range_request(keys, [yesterday], tags={"bt_pipelines/trigger": "close_yesterday"})]

    @dg.schedule(name=definition_name(config, project, "reconcile"), cron_schedule=config.reconcile_cron,
                 execution_timezone="UTC", target=keys, default_status=_status(config),
                 description=f"Checks the last {config.reconcile_days} days of {project.name!r} against Braintrust's "
                             "counts, and reads whole each partition that differs")
    def _reconcile(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        days = recent_days(project, context.scheduled_execution_time.date(), config.reconcile_days)
        return [range_request(keys, span, tags={RECONCILE_TAG: "true", "bt_pipelines/trigger": "reconcile"})
                for span in split_ranges([days] if days else [], config.max_partitions_per_run)]

    return [_close_yesterday, _reconcile]
