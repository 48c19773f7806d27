"""The README's main command: the demo exports everything, proves the logs exact, and keeps the key secret."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DemoRun:
    done: subprocess.CompletedProcess
    lake: Path
    secret: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoRun:
    """One demo run, with a recognisable API key, shared by the tests below."""
    lake = tmp_path_factory.mktemp("demo") / "lake"
    secret = f"sk-SECRET-{uuid.uuid4().hex}"
    done = subprocess.run([sys.executable, "-m", "bt_pipelines.demo", "--lake", str(lake), "--api-key", secret],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return DemoRun(done, lake, secret)


def test_the_demo_exports_every_table_and_the_logs_exactly(demo):
    out = demo.done.stdout
    assert "(exact)" in out and "MISMATCH" not in out
    for table in ("project_logs", "project_logs_traces", "llm_spans", "errored_traces", "experiments",
                  "experiments_catalog", "datasets", "datasets_catalog"):
        assert f"\n  {table} " in out, table
    assert "mean_helpfulness" in out and "gpt-4o-mini-baseline-1" in out
    assert "(2 incremental)" in out and "8 rows read" in out and "8 changed" in out  # only the changes
    days = duckdb.sql(f"SELECT count(DISTINCT date) FROM read_parquet('{demo.lake}/project_logs/*/*/*.parquet', "
                      "hive_partitioning = true)").fetchall()[0][0]
    assert days == 14
    experiments = duckdb.sql(f"SELECT count(*) FROM read_parquet('{demo.lake}/experiments_catalog/*/*.parquet')")
    assert experiments.fetchall()[0][0] == 6


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_demo_never_shows_or_stores_the_key(demo):
    assert demo.secret not in demo.done.stdout + demo.done.stderr
    assert files_containing(demo.lake, demo.secret) == []
    assert files_containing(REPO / ".dagster_home", demo.secret) == []  # runs, event logs, compute logs
