"""Dagster resources: the Braintrust API and the lake's storage."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_gcp import GCSResource
from pydantic import Field, PrivateAttr

from ..sink.storage import Storage, open_storage, parse_destination
from ..source.client import DEFAULT_API_URL, BraintrustClient
from .config import ExportConfig


class BraintrustResource(dg.ConfigurableResource):
    """Braintrust's API. Give `api_key` as `dg.EnvVar("BRAINTRUST_API_KEY")`: never a literal."""

    api_url: str = Field(default=DEFAULT_API_URL)
    api_key: str = Field(description="the API key; use an EnvVar so it stays out of run config")
    org_name: str | None = None
    timeout_seconds: float = 60.0

    def client(self) -> BraintrustClient:
        return BraintrustClient(self.api_url, self.api_key, org_name=self.org_name, timeout=self.timeout_seconds)


class LakeResource(dg.ConfigurableResource):
    """The lake's root, and the dagster-aws / dagster-gcp resources used to reach it."""

    destination: str
    s3: S3Resource | None = None
    gcs: GCSResource | None = None
    _storage: Storage | None = PrivateAttr(default=None)

    def storage(self) -> Storage:
        if self._storage is None:
            scheme = parse_destination(self.destination)[0]
            clients: dict[str, Any] = {}
            if scheme == "s3":
                clients["s3_client"] = (self.s3 or S3Resource()).get_client()
            elif scheme == "gs":
                clients["gcs_client"] = (self.gcs or GCSResource()).get_client()
            self._storage = open_storage(self.destination, **clients)
        return self._storage


def build_resources(config: ExportConfig) -> dict[str, dg.ConfigurableResource]:
    return {
        "braintrust": BraintrustResource(api_url=config.api_url, api_key=dg.EnvVar(config.api_key_env),
                                         org_name=config.org_name),
        "lake": LakeResource(destination=config.destination,
                             s3=S3Resource(endpoint_url=config.s3_endpoint_url, region_name=config.s3_region),
                             gcs=GCSResource(project=config.gcs_project)),
    }
