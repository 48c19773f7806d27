"""bt_pipelines: keep a Braintrust organisation's data in your own lake, with Dagster."""

from .orchestration.assets import BraintrustTranslator
from .orchestration.component import BraintrustExportComponent
from .orchestration.config import ExportConfig, ProjectConfig
from .orchestration.definitions import build_definitions
from .orchestration.resources import BraintrustResource, LakeResource

__all__ = ["BraintrustExportComponent", "BraintrustResource", "BraintrustTranslator", "ExportConfig",
           "LakeResource", "ProjectConfig", "build_definitions"]
