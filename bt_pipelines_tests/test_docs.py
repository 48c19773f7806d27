"""The docs stay true: every lake column and every setting is documented."""

from __future__ import annotations

from pathlib import Path

from bt_pipelines.orchestration.config import CustomExport, ExportConfig, ProjectConfig
from bt_pipelines.sink.schema import PROJECT_LOGS, SCHEMAS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_project_logs_column_is_in_the_lake_doc_in_order():
    text = (DOCS / "lake.md").read_text().split("## Schema of `project_logs`", 1)[1].split("###", 1)[0]
    documented = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert documented == [c.name for c in PROJECT_LOGS.columns]


def test_every_table_is_documented_column_by_column():
    text = (DOCS / "lake.md").read_text()
    for name, schema in SCHEMAS.items():
        if name == "project_logs":
            continue
        section = text.split(f"### `{name}`", 1)[1].split("###", 1)[0]
        documented = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
        assert documented == [c.name for c in schema.columns], name


def test_every_setting_is_in_the_configuration_doc():
    text = (DOCS / "configuration.md").read_text()
    for name in [*ExportConfig.model_fields, *ProjectConfig.model_fields, *CustomExport.model_fields]:
        assert f"| `{name}` |" in text, name
