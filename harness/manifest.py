"""Provenance of a run: what ran, on what, with what, when (manifest.json)."""

from __future__ import annotations

import datetime as dt
import platform
import secrets
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from harness.plan import Plan
from harness.records import RunManifest

PACKAGES = (
    "prelabel",
    "litellm",
    "llama-cpp-python",
    "pydantic",
    "numpy",
    "scipy",
    "scikit-learn",
    "diskcache",
    "tenacity",
    "jinja2",
)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id(name: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{name}-{secrets.token_hex(2)}"


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding `folder`, or (None, None) outside one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def build_manifest(plan: Plan, run_id: str) -> RunManifest:
    resolved = plan.resolved
    commit, dirty = git_state(resolved.base)
    return RunManifest(
        run_id=run_id,
        status="running",
        prelabel_version=package_versions().get("prelabel", "unknown"),
        config_path=str(resolved.path),
        config_hash=resolved.config_hash,
        config=resolved.experiment.model_dump(mode="json"),
        prompt_hashes={pid: t.content_hash for pid, t in plan.templates.items()},
        gold_set_hashes={g.id: g.content_hash for g in plan.gold_sets},
        setups=[
            {
                "id": s.id,
                "prompt": s.prompt_id,
                "model": s.model_id,
                "model_string": plan.models[s.model_id].model,
                # Which kinds of PII were masked before this setup's model saw the items, and
                # how many replacements each made (harness/pii.py); never the values.
                **({"pii_masking": plan.pii[s.model_id]} if s.model_id in plan.pii else {}),
            }
            for s in plan.setups
        ],
        packages=package_versions(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        git_commit=commit,
        git_dirty=dirty,
        started_at=now_iso(),
    )
