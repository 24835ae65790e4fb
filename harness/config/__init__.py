"""Config: the experiment YAML -> validated pydantic models, and loading it with every problem
reported by file, line and key. `from harness.config import ...` is the front door; the parts
live in `task` (what a label is), `decision` (report, gate and cost settings), `experiment`
(the whole config) and `load` (YAML -> `ResolvedExperiment`).
"""

from harness.config.decision import (
    AltTestConfig,
    Constraints,
    CostConfig,
    GateConfig,
    GateMetric,
    ReportConfig,
)
from harness.config.experiment import (
    ID_PATTERN,
    SECRET_PARAM,
    ConfidenceSource,
    CsvColumns,
    Experiment,
    FewShotConfig,
    GoldSetConfig,
    JuryConfig,
    ModelConfig,
    PromptConfig,
    RunConfig,
    SetupConfig,
)
from harness.config.load import ResolvedExperiment, load_experiment
from harness.config.task import (
    PAIRWISE_LABELS,
    STRUCTURED_TYPES,
    AxisSpec,
    LabelSpec,
    LocatedValueError,
    PairwiseConfig,
    RankingConfig,
    Strict,
    TaskConfig,
)
from harness.config.tracking import MlflowConfig, TrackingConfig

__all__ = [
    "ID_PATTERN",
    "PAIRWISE_LABELS",
    "SECRET_PARAM",
    "STRUCTURED_TYPES",
    "AltTestConfig",
    "AxisSpec",
    "ConfidenceSource",
    "Constraints",
    "CostConfig",
    "CsvColumns",
    "Experiment",
    "FewShotConfig",
    "GateConfig",
    "GateMetric",
    "GoldSetConfig",
    "JuryConfig",
    "LabelSpec",
    "LocatedValueError",
    "MlflowConfig",
    "ModelConfig",
    "PairwiseConfig",
    "PromptConfig",
    "RankingConfig",
    "ReportConfig",
    "ResolvedExperiment",
    "RunConfig",
    "SetupConfig",
    "Strict",
    "TaskConfig",
    "TrackingConfig",
    "load_experiment",
]
