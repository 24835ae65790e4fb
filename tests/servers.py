"""Real servers for the integration tests (MLflow, Label Studio): each in a virtual
environment of its own (their pinned dependencies are not prelabel's), started on a free
port of 127.0.0.1, up when `/health` answers, stopped at the end."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_with(root: Path, package: str) -> Path:
    """A venv under `root` with `package` installed; its bin folder. Fails in CI (the
    install must work there), skips with the reason elsewhere."""
    venv = root / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", package], capture_output=True, text=True
    )
    if made.returncode or pip.returncode:
        if os.environ.get("CI"):
            pytest.fail(f"installing {package} failed: {pip.stderr[-1500:]}")
        pytest.skip(f"cannot install {package} into its own virtual environment here")
    return venv / "bin"


@contextlib.contextmanager
def served(command: list[str], root: Path, port: int, env: dict | None = None) -> Iterator[str]:
    """Run `command` until `/health` answers on `port`; yield its URL; stop it."""
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while server.poll() is None:  # up when /health answers; no time limit of our own
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, (root / "server.log").read_text()[-3000:]
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
