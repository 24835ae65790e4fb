"""Provenance of a run: what ran, on what, with what, when (manifest.json)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import secrets
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.core.records import RunManifest
from harness.run.plan import Plan

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
                # how many replacements each made (harness/inputs/pii.py); never the values.
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
        process=process_identity(),
        plan_hash=plan_hash(plan),
    )


def plan_hash(plan: Plan) -> str:
    """A digest of every call the plan makes (its cache key: model, params and the rendered
    messages, few-shot examples and guidelines included) and of each replay file's bytes:
    labels already in a run folder belong to the plan only while this is unchanged."""
    h = hashlib.sha256("\n".join(s.cache_key for s in plan.specs).encode())
    for setup_id, path in sorted(plan.replay_files.items()):
        h.update(f"\nreplay {setup_id} ".encode() + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """Who is running a run: enough to tell later whether that very process still lives.
    A pid alone is not: pids are reused, so its start time (and the boot) pins it down."""
    pid = os.getpid() if pid is None else pid
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "started": _start_time(pid),
        "boot_id": _boot_id(),
    }


def process_alive(process: dict[str, Any] | None) -> bool | None:
    """Whether the process recorded by `process_identity` still runs; None when this
    machine cannot tell (another host, or no process recorded)."""
    if not process or process.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if boot and process.get("boot_id") and boot != process["boot_id"]:
        return False  # the machine rebooted since: every process of then is gone
    pid = process.get("pid")
    if not isinstance(pid, int):
        return None
    started = _start_time(pid)
    if started is not None:
        # The same pid with another start time is another process that reused the pid.
        return process.get("started") in (None, started)
    if Path("/proc/self/stat").exists():
        return False  # /proc works here and has no such (living) pid
    if os.name != "posix":
        return None  # os.kill(pid, 0) would not probe on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _start_time(pid: int) -> int | float | None:
    """Start time of a living process: /proc (clock ticks since boot) on Linux, else psutil
    if installed; None if the process is gone or a zombie (killed, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        stat = None
    if stat is not None:
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        fields = stat[stat.rfind(")") + 2 :].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])  # state; field 22
    try:
        import psutil  # optional: not a dependency
    except ImportError:
        return None
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.Error:
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
