"""The YAML face of bt_pipelines: `type: bt_pipelines.BraintrustExportComponent` in a defs.yaml."""

from __future__ import annotations

import dagster as dg

from .config import ExportConfig
from .definitions import build_definitions


class BraintrustExportComponent(dg.Component, dg.Resolvable, ExportConfig):
    """Export Braintrust project logs into your lake as daily-partitioned assets.

    Attributes are those of `ExportConfig`; the API key comes from the environment only.
    """

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions(ExportConfig.model_validate(self.model_dump()))
