"""Experiment tracking settings (config station): where `run`, `gate` and `label` log.

    tracking:
      mlflow: {experiment: sentiment-prelabel, tracking_uri: http://127.0.0.1:5000}

Either key may be left out: the experiment defaults to the config's `name`, the tracking
URI to $MLFLOW_TRACKING_URI. `--mlflow` on the command line turns tracking on for one
command without this block. What is logged: harness/api/tracking.py.
"""

from __future__ import annotations

from pydantic import Field

from harness.config.task import Strict


class MlflowConfig(Strict):
    experiment: str | None = Field(default=None, min_length=1)
    tracking_uri: str | None = Field(default=None, min_length=1)


class TrackingConfig(Strict):
    mlflow: MlflowConfig | None = None
