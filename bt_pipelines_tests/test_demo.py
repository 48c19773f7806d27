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
    assert "Exported 28 partitions of 2 projects" in done.stdout
    assert "(exact)" in done.stdout
    assert "mean_helpfulness" in done.stdout
    days = duckdb.sql(f"SELECT count(DISTINCT date) FROM read_parquet('{lake}/project_logs/*/*/*.parquet', "
                      "hive_partitioning = true)").fetchall()[0][0]
    assert days == 14
