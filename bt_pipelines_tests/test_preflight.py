"""Preflight, from the CLI and from Dagster: a clear table, non-zero on failure, nothing written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bt_pipelines import ExportConfig
from bt_pipelines.emulator import emulator
from bt_pipelines.orchestration.preflight import build_preflight_job
from bt_pipelines.orchestration.resources import build_resources

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=1) as running:
        yield running


def project_dir(tmp_path: Path, destination: str, projects=("checkout-assistant", "support bot eu")) -> Path:
    folder = tmp_path / "proj" / "defs" / "lake"
    folder.mkdir(parents=True)
    listed = "\n".join(f'    - name: {name}\n      start_date: "2026-01-01"' for name in projects)
    (folder / "defs.yaml").write_text(textwrap.dedent("""\
        type: bt_pipelines.BraintrustExportComponent
        attributes:
          destination: {destination}
          projects:
        """).format(destination=destination) + listed + "\n")
    return tmp_path / "proj"


def check(bt, root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "bt-pipelines"), "check", str(root)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **bt.env(), "BT_PIPELINES_DESTINATION": "", **env})


def test_a_working_configuration_passes_and_writes_nothing(bt, tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    done = check(bt, project_dir(tmp_path, str(lake)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"project 'support bot eu' +ok +resolves to", done.stdout)
    assert "5 ok, 0 failed" in done.stdout
    assert list(lake.iterdir()) == []


def test_every_problem_is_a_row_and_the_exit_code_says_so(bt, tmp_path):
    root = project_dir(tmp_path, "s3://no-such-bucket/x", projects=("checkout-assistant", "chekout"))
    done = check(bt, root)
    assert done.returncode == 1
    assert "project 'chekout'" in done.stdout and "closest existing: 'checkout-assistant'" in done.stdout
    assert "destination" in done.stdout and "S3 could not write" in done.stdout
    bad_key = check(bt, root, BRAINTRUST_API_KEY="sk-wrong-key-123")
    assert bad_key.returncode == 1 and "Braintrust refused the API key" in bad_key.stdout
    assert "sk-wrong-key-123" not in bad_key.stdout + bad_key.stderr


def test_no_configuration_found_is_a_usage_error(bt, tmp_path):
    done = check(bt, tmp_path)
    assert done.returncode == 2 and "no defs.yaml" in done.stderr


def test_the_preflight_job_fails_in_dagster_with_the_same_findings(bt, tmp_path, monkeypatch):
    for name, value in bt.env().items():
        monkeypatch.setenv(name, value)
    good = ExportConfig(destination=str(tmp_path / "lake"), projects=[{"name": "checkout-assistant",
                                                                       "start_date": "2026-01-01"}])
    result = build_preflight_job(good).execute_in_process(resources=build_resources(good.with_environment()))
    assert result.success
    bad = good.model_copy(update={"projects": [*good.projects, good.projects[0].model_copy(update={"name": "nope"})]})
    result = build_preflight_job(bad).execute_in_process(resources=build_resources(bad.with_environment()),
                                                         raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "project 'nope': no project named 'nope'" in failure.message
