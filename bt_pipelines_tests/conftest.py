"""Shared fixtures. The emulator fixtures themselves come from bt_pipelines' pytest plugin."""

from __future__ import annotations

import pytest

from bt_pipelines.emulator.store import Store


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def project(store: Store) -> str:
    return store.create_object("project", "p")["id"]
