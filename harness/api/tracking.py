"""MLflow tracking (api station): one MLflow run per prelabel run, for `run`, `gate`, `label`.

Turned on by `tracking.mlflow` in the config or `--mlflow` on the command (optional extra
`mlflow`: the tracking client only, `mlflow-skinny`). What one MLflow run holds:

- metrics, per setup (`<setup>/<name>`, with `<gold set>/` in front when there are several;
  characters MLflow refuses in a name, such as `@`, become `_`): kappa, accuracy, macro-F1
  and ECE, each with `_low` and `_high` (the report's bootstrap interval) and `_n`;
  coverage; cost per 1,000 items (USD); and the run's totals (`totals/labels`, `calls`...);
- params: the prelabel version, config hash, each model's model string, each prompt's and
  gold set's content hash;
- tags: `prelabel.command`, `prelabel.run_id`, `prelabel.status`, the recommended setup,
  and for `gate` its verdict;
- artifacts: the run folder's reports, metrics.json and manifest.json (and a label run's
  estimates and manifest).

The run folder is complete before anything is logged: a tracking server that fails does not
undo a run, it is reported (the caller warns) with how to log the run again.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from harness.config import MlflowConfig
from harness.core.errors import UserError

ARTIFACTS = (
    "report.html",
    "report.md",
    "metrics.json",
    "manifest.json",
    "estimates.json",
    "audit.json",
)
INTERVALS = ("kappa", "accuracy", "macro_f1")
NAME = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_settings(config: MlflowConfig | None, flag: bool) -> MlflowConfig | None:
    """The settings to log with, or None: the config's block, else defaults if `--mlflow`."""
    if config is not None:
        return config
    return MlflowConfig() if flag else None


def log_run(
    run_dir: Path,
    settings: MlflowConfig,
    *,
    command: str,
    experiment: str,
    tags: dict[str, str] | None = None,
) -> str:
    """Log one finished run folder to MLflow; return the MLflow run id. Raises UserError
    (with what to do) when mlflow is missing, no tracking URI is set, or the server fails."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param
    except ImportError:
        raise UserError.at(
            "MLflow tracking needs the 'mlflow' package, which is not installed",
            key="tracking.mlflow",
            hint="pip install 'prelabel[mlflow]' (the tracking client, mlflow-skinny)",
        ) from None
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise UserError.at(
            "MLflow tracking is on but no tracking URI is set",
            key="tracking.mlflow.tracking_uri",
            hint="set tracking.mlflow.tracking_uri in the config or export "
            "MLFLOW_TRACKING_URI=http://host:5000 (a server) or file:./mlruns",
        )
    manifest = _read(run_dir / "manifest.json") or {}
    metrics = _read(run_dir / "metrics.json")
    if manifest.get("kind") == "label":  # its figures are the pool's estimates
        metrics = _read(run_dir / "estimates.json")
    name = settings.experiment or experiment
    now = int(time.time() * 1000)
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        exp_id = found.experiment_id if found else client.create_experiment(name)
        all_tags = {
            "prelabel.command": command,
            "prelabel.run_id": run_dir.name,
            "prelabel.status": str(manifest.get("status", "")),
            "prelabel.run_dir": str(run_dir.resolve()),
            **(_recommended(metrics) if manifest.get("kind") != "label" else {}),
            **({"prelabel.setup": str(manifest["setup"])} if "setup" in manifest else {}),
            **(tags or {}),
        }
        run = client.create_run(exp_id, run_name=run_dir.name, tags=all_tags)
        run_id = run.info.run_id
        values = [Metric(k, v, now, 0) for k, v in figures(metrics, manifest).items()]
        params = [Param(k, v[:6000]) for k, v in _params(manifest).items()]
        for i in range(0, max(len(values), len(params)), 100):  # MLflow's batch limits
            client.log_batch(run_id, metrics=values[i : i + 100], params=params[i : i + 100])
        for artifact in ARTIFACTS:
            if (run_dir / artifact).exists():
                client.log_artifact(run_id, str(run_dir / artifact))
        client.set_terminated(run_id, "FINISHED")
    except UserError:
        raise
    except Exception as exc:  # the server's or the store's own error: say where and why
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise UserError.at(
            f"logging run {run_dir.name} to MLflow at {uri} failed: {first}",
            key="tracking.mlflow",
            hint="the run itself is complete; check the tracking server, then log it again "
            "with harness.api.tracking.log_run (or rerun the command: it is cached)",
        ) from None
    return run_id


def figures(metrics: dict[str, Any] | None, manifest: dict[str, Any]) -> dict[str, float]:
    """The metric name -> value map logged for one run (finite numbers only)."""
    out: dict[str, float] = {}
    totals = manifest.get("totals") or {}
    for key in ("labels", "cached", "calls", "cost_usd", "input_tokens", "output_tokens"):
        _put(out, f"totals/{key}", totals.get(key))
    _put(out, "totals/failures", sum((totals.get("failures") or {}).values()))
    if manifest.get("kind") == "label":
        _label_figures(out, manifest, metrics or {})
    gold_sets = (metrics or {}).get("gold_sets") or []
    for gs in gold_sets:
        prefix = f"{gs['id']}/" if len(gold_sets) > 1 else ""
        for s in gs.get("setups", []):
            head = f"{prefix}{s['setup']}/"
            for name in INTERVALS:
                _interval(out, head + name, s.get(name))
            _interval(out, head + "ece", (s.get("calibration") or {}).get("ece"))
            _put(out, head + "coverage", (s.get("coverage") or {}).get("value"))
            _put(out, head + "n_items", s.get("n_items"))
            llm = ((s.get("cost") or {}).get("llm") or {}).get("per_1k")
            _put(out, head + "cost_per_1k_usd", llm)
    return {NAME.sub("_", k): v for k, v in out.items()}


def _label_figures(out: dict[str, float], manifest: dict[str, Any], estimates: dict) -> None:
    """A label run: its routing counts, calls, and each label's share in the pool (PPI,
    with its interval and the gold items behind it)."""
    counts = manifest.get("counts") or {}
    for key in ("items", "accept", "review", "no_label", "queue", "blind_in_queue"):
        _put(out, f"label/{key}", counts.get(key))
    if counts.get("items"):
        _put(out, "label/accept_share", counts.get("accept", 0) / counts["items"])
    _put(out, "label/calls", manifest.get("calls"))
    _put(out, "label/cached", manifest.get("cached"))
    _put(out, "label/threshold", manifest.get("threshold"))
    for row in estimates.get("labels") or []:
        ppi = row.get("ppi") or {}
        _interval(out, f"pool_share/{row.get('label')}", {**ppi, "n": ppi.get("n_gold")})


def _interval(out: dict[str, float], name: str, block: Any) -> None:
    if not isinstance(block, dict):
        return
    _put(out, name, block.get("estimate"))
    _put(out, f"{name}_low", block.get("low"))
    _put(out, f"{name}_high", block.get("high"))
    _put(out, f"{name}_n", block.get("n"))


def _put(out: dict[str, float], name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # None (undefined, with a note in metrics.json): not a number to plot
    if value == value and abs(value) != float("inf"):
        out[name] = float(value)


def _params(manifest: dict[str, Any]) -> dict[str, str]:
    config = manifest.get("config") or {}
    out = {
        "prelabel_version": str(manifest.get("prelabel_version", "")),
        "config_hash": str(manifest.get("config_hash", "")),
        "config_path": str(manifest.get("config_path", "")),
    }
    if manifest.get("kind") == "label":  # what labelled which items, with what threshold
        out["setup"] = str(manifest.get("setup"))
        out["evaluation_run"] = str(manifest.get("evaluation_run"))
        out["input_hash"] = str((manifest.get("input") or {}).get("content_hash", ""))
        out["confidence"] = str(manifest.get("confidence"))
        out["model"] = str(manifest.get("model"))
    for m in config.get("models") or []:
        out[f"model/{m.get('id')}"] = str(m.get("model"))
    for key, value in (manifest.get("prompt_hashes") or {}).items():
        out[f"prompt_hash/{key}"] = str(value)
    for key, value in (manifest.get("gold_set_hashes") or {}).items():
        out[f"gold_set_hash/{key}"] = str(value)
    return {NAME.sub("_", k): v for k, v in out.items()}


def _recommended(metrics: dict[str, Any] | None) -> dict[str, str]:
    rec = (metrics or {}).get("recommendation") or {}
    pick = rec.get("recommended")
    return {"prelabel.recommended": str(pick)} if pick else {}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
