"""Preflight from the CLI (`bt-pipelines check`) and from Dagster (the `braintrust_preflight` job).

Both read the same configuration and environment overrides as the assets.
"""

import os
from pathlib import Path

import dagster as dg
import yaml

from ..engine.preflight import Finding, preflight, report
from ..source.client import BraintrustClient
from ..source.errors import ConfigError
from .config import ExportConfig
from .resources import BraintrustResource, LakeResource, build_resources

COMPONENT_TYPES = {"bt_pipelines.BraintrustExportComponent",
                   "bt_pipelines.orchestration.component.BraintrustExportComponent"}


def find_configs(root: Path) -> list[tuple[Path, ExportConfig]]:
    """Every defs.yaml under `root` that declares the bt_pipelines component."""
    found = []
    for path in sorted(root.rglob("defs.yaml")):
        if any(part.startswith(".") or part in ("node_modules", "site-packages") for part in path.parts):
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("type") in COMPONENT_TYPES:
                found.append((path, ExportConfig.model_validate(document.get("attributes") or {})))
    return found


def run_preflight(config: ExportConfig) -> list[Finding]:
    config = config.with_environment()
    resources = build_resources(config)
    lake: LakeResource = resources["lake"]
    key = os.environ.get(config.api_key_env, "")
    if not key:
        return [Finding("API key", False, f"{config.api_key_env} is not set")]
    with BraintrustClient(config.api_url, key, org_name=config.org_name) as client:
        return preflight(client, lake.storage, [p.name for p in config.projects])


def check_command(root: Path) -> int:
    configs = find_configs(root)
    if not configs:
        raise ConfigError(f"no defs.yaml with `type: bt_pipelines.BraintrustExportComponent` under {root}")
    failed = 0
    for path, config in configs:
        print(f"{path}:")
        findings = run_preflight(config)
        print(report(findings) + "\n")
        failed += sum(not f.ok for f in findings)
    return 1 if failed else 0


def build_preflight_job(config: ExportConfig) -> dg.JobDefinition:
    @dg.op(name="braintrust_preflight_op", description="check the API, the key, the projects and the lake")
    def _preflight(context: dg.OpExecutionContext, braintrust: BraintrustResource, lake: LakeResource) -> None:
        with braintrust.client() as client:
            findings = preflight(client, lake.storage, [p.name for p in config.projects])
        context.log.info("\n" + report(findings))
        failed = [f for f in findings if not f.ok]
        if failed:
            raise dg.Failure(description="preflight failed: " + "; ".join(f"{f.check}: {f.detail}" for f in failed),
                             metadata={f.check: f.detail for f in findings})

    @dg.job(name="braintrust_preflight", description="Preflight: can this configuration export? Writes nothing.")
    def _job() -> None:
        _preflight()

    return _job
