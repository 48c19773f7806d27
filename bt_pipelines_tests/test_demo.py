"""The README's main command: the demo exports every logs partition and proves the lake exact."""

from __future__ import annotations

import subprocess
import sys

import duckdb


def test_the_demo_exports_every_partition_exactly(tmp_path):
    lake = tmp_path / "lake"
    done = subprocess.run([sys.executable, "-m", "bt_pipelines.demo", "--lake", str(lake)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in the lake: 2,964 (exact)" in done.stdout or "(exact)" in done.stdout
    for table in ("project_logs", "project_logs_traces", "llm_spans", "errored_traces", "experiments",
                  "experiments_catalog", "datasets", "datasets_catalog"):
        assert f"\n  {table} " in done.stdout, table
    assert "mean_helpfulness" in done.stdout and "gpt-4o-mini-baseline-1" in done.stdout
    days = duckdb.sql(f"SELECT count(DISTINCT date) FROM read_parquet('{lake}/project_logs/*/*/*.parquet', "
                      "hive_partitioning = true)").fetchall()[0][0]
    assert days == 14
    experiments = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/experiments_catalog/*/*.parquet')")
    assert experiments.fetchall()[0][0] == 6
