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


# -- lakes on every backend ---------------------------------------------------------------------
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from bt_pipelines.sink.storage import Storage, open_storage  # noqa: E402

from .servers import gcs_client, gcs_server, moto_server, s3_client  # noqa: E402


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_host() -> Iterator[str]:
    with gcs_server() as host:
        yield host


@dataclass
class Lake:
    """A fresh, empty lake: its destination URL and a Storage to inspect it."""

    backend: str
    destination: str
    storage: Storage
    clients: dict[str, Any]

    def reopen(self) -> Storage:
        return open_storage(self.destination, **self.clients)


def make_lake(backend: str, request: pytest.FixtureRequest, tmp_path) -> Lake:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    if backend == "local":
        destination, clients = str(tmp_path / "lake"), {}
    elif backend == "s3":
        client = s3_client(request.getfixturevalue("s3_endpoint"))
        client.create_bucket(Bucket=bucket)
        destination, clients = f"s3://{bucket}/exports", {"s3_client": client}
    else:
        client = gcs_client(request.getfixturevalue("gcs_host"))
        client.create_bucket(bucket)
        destination, clients = f"gs://{bucket}/exports", {"gcs_client": client}
    return Lake(backend, destination, open_storage(destination, **clients), clients)


@pytest.fixture(params=["local", "s3", "gcs"])
def lake(request: pytest.FixtureRequest, tmp_path) -> Lake:
    return make_lake(request.param, request, tmp_path)


@pytest.fixture
def local_lake(request: pytest.FixtureRequest, tmp_path) -> Lake:
    return make_lake("local", request, tmp_path)


@pytest.fixture
def lake_factory(request: pytest.FixtureRequest, tmp_path) -> Callable[[str], Lake]:
    return lambda backend: make_lake(backend, request, tmp_path / uuid.uuid4().hex[:6])
