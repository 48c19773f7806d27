"""What a user configures, validated up front so `dg check defs` names every mistake.

The same config serves dev and prod: these environment variables, when set, win over the
file: `BT_PIPELINES_DESTINATION` (the lake's root), `BRAINTRUST_API_URL`, and
`BT_PIPELINES_START_DATE` (every project starts there). The API key is only ever read from
the environment (`BRAINTRUST_API_KEY`, or the variable named by `api_key_env`).
"""

from __future__ import annotations

import os
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..engine.model import MAX_READ_STREAMS, ExportOptions
from ..sink.layout import slugify
from ..sink.storage import parse_destination
from ..source.client import DEFAULT_API_URL
from ..source.errors import ConfigError

DESTINATION_ENV = "BT_PIPELINES_DESTINATION"
START_DATE_ENV = "BT_PIPELINES_START_DATE"
API_URL_ENV = "BRAINTRUST_API_URL"


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Braintrust project name (or id), as in the Braintrust UI")
    start_date: str = Field(description="first UTC day to export (YYYY-MM-DD)")
    slug: str | None = Field(default=None, description="path and asset-key name; default: a slug of the name")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("project name is empty")
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _start_date(cls, value: object) -> str:
        text = value.isoformat() if isinstance(value, date) else str(value)
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"start_date {text!r} is not a YYYY-MM-DD date") from exc
        return text

    @property
    def start(self) -> date:
        return date.fromisoformat(self.start_date)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,99}", value):
            raise ValueError(f"slug {value!r} must be lower-case letters, digits, '-' or '_'")
        return value

    @property
    def key(self) -> str:
        return self.slug or slugify(self.name)


RESERVED_TABLES = frozenset({"project_logs", "project_logs_traces", "experiments", "datasets", "experiments_catalog",
                             "datasets_catalog"})


class CustomExport(BaseModel):
    """A named, filtered daily export of a project's logs, in its own folder."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="asset and folder name: lower-case letters, digits, '_' or '-'")
    filter: str = Field(description="a SQL WHERE expression or BTQL filter, e.g. span_attributes.type = 'llm'")
    whole_traces: bool = Field(default=False, description="export every span of each trace with a matching span")
    trace_grace_hours: int = Field(default=24, description="with whole_traces: how late (0 to 336 hours) a "
                                                          "matching span may follow its root's day")

    @field_validator("trace_grace_hours")
    @classmethod
    def _grace(cls, value: int) -> int:  # a validator, not Field(ge=...): dg's YAML models refuse those here
        if not 0 <= value <= 24 * 14:
            raise ValueError(f"trace_grace_hours must be between 0 and 336, not {value}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", value):
            raise ValueError(f"export name {value!r} must be lower-case letters, digits, '_' or '-'")
        if value in RESERVED_TABLES:
            raise ValueError(f"export name {value!r} is taken by a built-in table")
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("filter is empty")
        return value


class ExportConfig(BaseModel):
    """Everything bt_pipelines needs to export a Braintrust organisation."""

    model_config = ConfigDict(extra="forbid")

    destination: str = Field(description=f"lake root: a folder, s3://bucket/prefix or gs://bucket/prefix "
                                         f"(${DESTINATION_ENV} overrides)")
    projects: list[ProjectConfig] = Field(description="the projects whose logs to export")
    format: Literal["parquet", "jsonl"] = Field(default="parquet", description="parquet (ZSTD) or jsonl (.jsonl.gz)")
    api_url: str = Field(default=DEFAULT_API_URL, description=f"Braintrust API URL (${API_URL_ENV} overrides)")
    api_key_env: str = Field(default="BRAINTRUST_API_KEY", description="environment variable holding the API key")
    org_name: str | None = Field(default=None, description="organisation, when the key can see several")
    file_size_mb: int = Field(default=256, ge=1, le=4096, description="files roll at about this size")
    page_size: int = Field(default=1000, ge=25, le=1000, description="rows per API page (at most 1000)")
    read_streams: int = Field(default=ExportOptions.read_streams, ge=1, le=MAX_READ_STREAMS,
                              description="readers at once for a run of several days, each over its own "
                                          "contiguous stretch of them")
    max_partitions_per_run: int | None = Field(
        default=None, ge=1, description="split backfills into runs of this many days (default: one run per range)")
    experiments: bool = Field(default=True, description="export experiments (one partition each) and their catalog")
    datasets: bool = Field(default=True, description="export datasets (one partition each) and their catalog")
    trace_summaries: bool = Field(default=True, description="export one row per trace (project_logs_traces)")
    exports: list[CustomExport] = Field(default_factory=list, description="named, filtered daily exports")
    sensor_interval_seconds: int = Field(default=300, ge=30, description="how often sensors look for changes")
    freshness_hours: int = Field(default=30, ge=1, description="a daily asset not updated for this long is stale "
                                                                "(warning; failing after twice as long)")
    sensors_running: bool = Field(default=False, description="start the sensors and schedules running (else: turn "
                                  "them on in the UI)")
    close_day_cron: str = Field(default="30 0 * * *", description="when (UTC cron) to refresh yesterday once more, "
                                "for rows that arrive late")
    reconcile_cron: str = Field(default="0 2 * * *", description="when (UTC cron) to reconcile recent days "
                                "with the source")
    reconcile_days: int = Field(default=7, ge=1, le=366, description="how many recent days (today included) the "
                                "reconcile checks")
    full_refresh: bool = Field(default=False, description="every run reads its partitions whole (else: only what "
                               "changed since their last run)")
    group_name: str = Field(default="braintrust", description="Dagster asset group")
    key_prefix: str = Field(default="braintrust", description="first part of every asset key")
    s3_endpoint_url: str | None = Field(default=None, description="for S3-compatible stores (MinIO, R2, ...)")
    s3_region: str | None = Field(default=None, description="AWS region of the bucket")
    gcs_project: str | None = Field(default=None, description="GCP project for the GCS client")

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        try:
            parse_destination(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _unique_projects(self) -> ExportConfig:
        if not self.projects:
            raise ValueError("projects is empty: list at least one Braintrust project")
        seen: dict[str, str] = {}
        for project in self.projects:
            name = project.key.replace("-", "_")  # Dagster op names cannot hold '-'
            if name in seen:
                raise ValueError(f"projects {seen[name]!r} and {project.name!r} both map to the name "
                                 f"{project.key!r}: give one of them a distinct `slug`")
            seen[name] = project.name
        names = [e.name for e in self.exports]
        if len(names) != len(set(names)):
            raise ValueError(f"exports have duplicate names: {sorted(n for n in set(names) if names.count(n) > 1)}")
        return self

    def with_environment(self, environ: dict[str, str] | None = None) -> ExportConfig:
        """The config with environment overrides applied (checked like the file)."""
        env = os.environ if environ is None else environ
        update: dict[str, object] = {}
        if env.get(DESTINATION_ENV):
            update["destination"] = env[DESTINATION_ENV]
        if env.get(API_URL_ENV):
            update["api_url"] = env[API_URL_ENV]
        data = self.model_dump()
        data.update(update)
        if env.get(START_DATE_ENV):
            try:
                date.fromisoformat(env[START_DATE_ENV])
            except ValueError as exc:
                raise ConfigError(f"{START_DATE_ENV}={env[START_DATE_ENV]!r} is not a YYYY-MM-DD date") from exc
            for project in data["projects"]:
                project["start_date"] = env[START_DATE_ENV]
        return ExportConfig.model_validate(data)


def definition_name(config: ExportConfig, project: ProjectConfig, what: str) -> str:
    """A Dagster name of one project's definition (partitions, sensor, schedule): `<prefix>__<project>__<what>`,
    with `-` as `_` (Dagster names cannot hold '-')."""
    return f"{config.key_prefix}__{project.key}__{what}".replace("-", "_")
