"""pytest fixtures for anyone testing against Braintrust: installed with bt_pipelines.

`braintrust_emulator` is an empty organisation per test; `braintrust_demo_emulator` is the
seeded demo organisation, shared by a session (treat it as read-only).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import RunningEmulator, emulator


@pytest.fixture
def braintrust_emulator() -> Iterator[RunningEmulator]:
    with emulator() as running:
        yield running


@pytest.fixture(scope="session")
def braintrust_demo_emulator() -> Iterator[RunningEmulator]:
    with emulator(seed="demo") as running:
        yield running
