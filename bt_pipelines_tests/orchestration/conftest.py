"""Dagster-layer fixtures: a real (sqlite) instance, and the environment a deployment would set."""

from __future__ import annotations

import dagster as dg
import pytest

from bt_pipelines.emulator import RunningEmulator


@pytest.fixture
def dagster_instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        yield instance


def use_emulator(monkeypatch: pytest.MonkeyPatch, bt: RunningEmulator) -> None:
    """Point bt_pipelines at `bt` through the environment, with no other override set."""
    monkeypatch.setenv("BRAINTRUST_API_URL", bt.url)
    monkeypatch.setenv("BRAINTRUST_API_KEY", bt.api_key)
    for name in ("BT_PIPELINES_DESTINATION", "BT_PIPELINES_START_DATE"):
        monkeypatch.delenv(name, raising=False)
