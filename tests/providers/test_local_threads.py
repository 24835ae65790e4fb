"""llama.cpp thread count: one core left free by default, the CPUs this process may really use
(issue 15, item 2). Unit tests: no model is loaded; `Llama` is replaced to see what it is
given. The load behaviour itself is a benchmark (bench/local_neighbour.py), not a test."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from harness.config import ModelConfig
from harness.providers import local


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (64, 4)])
def test_default_leaves_one_core_free_and_caps_at_four(cpus: int, threads: int) -> None:
    assert local.default_threads(cpus) == threads


def test_usable_cpus_follows_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(local.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(local.Path, "read_text", lambda self, *a, **k: "max 100000")
    assert local.usable_cpus() == 3


def test_usable_cpus_is_capped_by_the_cgroup_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container given 1.5 CPUs of a 64-core host: 2 usable, not 64."""
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    real = Path.read_text

    def read_text(self: Path, *a, **k) -> str:
        if str(self) == "/sys/fs/cgroup/cpu.max":
            return "150000 100000\n"
        return real(self, *a, **k)

    monkeypatch.setattr(local.Path, "read_text", read_text)
    assert local.usable_cpus() == 2


def _fake_llama(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    made: list[dict] = []

    class Llama:
        def __init__(self, **kw):
            made.append(kw)

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=Llama))
    monkeypatch.setattr(local.LocalProvider, "_models", {})
    monkeypatch.setattr(local.LocalProvider, "_locks", {})
    return made


def test_the_model_gets_the_default_or_the_configured_threads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    made = _fake_llama(monkeypatch)
    monkeypatch.setattr(local, "usable_cpus", lambda: 2)
    plain = ModelConfig(id="m", model=f"local/{gguf}")
    local.LocalProvider(plain, tmp_path)._llama(logits_all=False)
    assert made[-1]["n_threads"] == 1  # not os.cpu_count(): llama-cpp-python's own default
    pinned = ModelConfig(id="m", model=f"local/{gguf}", params={"n_threads": 2})
    local.LocalProvider(pinned, tmp_path)._llama(logits_all=False)
    assert made[-1]["n_threads"] == 2
    assert len(made) == 2  # one instance per thread count, not one reused for both
