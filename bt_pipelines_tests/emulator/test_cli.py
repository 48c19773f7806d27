"""`bt-pipelines emulator` starts a real server, prints its URL and key, and stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx


def test_the_emulator_command_serves_until_terminated():
    command = [str(Path(sys.executable).parent / "bt-pipelines"), "emulator", "--port", "0", "--seed", "demo",
               "--days", "2", "--api-key", "sk-cli-test", "--fault", "latency_ms=1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        printed = [process.stdout.readline() for _ in range(3)]
        assert any("BRAINTRUST_API_KEY=sk-cli-test" in line for line in printed)
        projects = httpx.get(f"{url}/v1/project", headers={"Authorization": "Bearer sk-cli-test"}).json()
        assert len(projects["objects"]) == 2
        assert httpx.get(f"{url}/admin/faults", headers={"Authorization": "Bearer sk-cli-test"}).json()[
            "latency_ms"] == 1
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_a_bad_fault_setting_is_refused_with_the_known_names():
    done = subprocess.run([str(Path(sys.executable).parent / "bt-pipelines"), "emulator", "--fault", "nope=1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown fault settings ['nope']" in done.stderr
