"""`bt-pipelines export`: days of one project's logs, now, with progress where a person watches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bt_pipelines.emulator import emulator

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def bt():
    with emulator(seed="demo", days=3) as running:
        yield running


def export(bt, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "bt-pipelines"), "export", *args, "--api-url", bt.url], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "BRAINTRUST_API_KEY": bt.api_key})


def test_export_writes_the_days_and_says_what_it_did(bt, tmp_path):
    done = export(bt, "Support Bot EU", "--days", "3", "--destination", str(tmp_path / "lake"), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert "rows of 'Support Bot EU' in 3 partitions" in done.stdout and "3 full" in done.stdout
    assert len(list((tmp_path / "lake" / "project_logs" / "project=support-bot-eu").iterdir())) == 3


def test_a_second_export_reads_only_what_changed_and_full_refresh_reads_everything(bt, tmp_path):
    lake = str(tmp_path / "lake")
    assert export(bt, "Support Bot EU", "--days", "2", "--destination", lake).returncode == 0
    again = export(bt, "Support Bot EU", "--days", "2", "--destination", lake)
    assert "2 unchanged); 0 rows read" in again.stdout, again.stdout
    full = export(bt, "Support Bot EU", "--days", "2", "--destination", lake, "--full-refresh")
    assert "2 full); 0 rows read" not in full.stdout and "2 full)" in full.stdout, full.stdout


def test_export_of_an_unknown_project_fails_with_the_closest_names(bt, tmp_path):
    done = export(bt, "support-bot", "--destination", str(tmp_path / "lake"))
    assert done.returncode == 1
    assert "closest existing: 'Support Bot EU'" in done.stderr
    assert not (tmp_path / "lake").exists()
