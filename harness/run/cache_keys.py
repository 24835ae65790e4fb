"""Cache keys: the sha256 of canonical JSON of everything that determines a call's output.

Never of timeouts, retry counts or keys (plan.NON_OUTPUT_PARAMS are left out before). The
request a key is the hash of travels with exported labels (`prelabel cache export`), so an
importer can recompute every key instead of trusting the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import ModelConfig


def cache_key(
    model: ModelConfig,
    messages: Any,
    params: Mapping[str, Any],
    schema: Any,
    top_logprobs: int | None,
    sample: int,
    model_file: str | None = None,
) -> str:
    """sha256 of canonical JSON of everything that determines the output, and nothing else."""
    return key_of(cache_request(model, messages, params, schema, top_logprobs, sample, model_file))


def cache_request(
    model: ModelConfig,
    messages: Any,
    params: Mapping[str, Any],
    schema: Any,
    top_logprobs: int | None,
    sample: int,
    model_file: str | None = None,
) -> dict[str, Any]:
    """What a cache key is the hash of. Exported beside each label (`prelabel cache export`),
    so an importer can check that every key is the hash of the request it claims to answer."""
    return {
        # A local GGUF is keyed by its weights, so the same file under another path or
        # name (another checkout, a CI runner) shares labels, and replaced weights do not.
        "model": "local-gguf" if model_file else model.model,
        "model_file": model_file,
        "api_base": model.api_base,  # the same name on another server may be another model
        "messages": [dict(m) for m in messages],
        # temperature 0 and 0.0 are the same setting: numbers are keyed as floats.
        "params": {k: _canonical_number(v) for k, v in params.items()},
        "response_schema": schema,
        "top_logprobs": top_logprobs,
        "sample": sample,
    }


def key_of(request: Mapping[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical_number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


_FINGERPRINTS: dict[tuple[str, int, float], str] = {}


def model_fingerprint(model: ModelConfig, base: Path | None = None) -> str | None:
    """For a local GGUF: sha256 of its size, first and last MiB, so that an upgraded or
    replaced file never reuses the old file's labels, while the same file at another path
    (another machine, a CI runner) shares them. None for remote models."""
    if model.kind.model_file is None:
        return None
    path = model.kind.model_file(model.model, base or Path.cwd())
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256(str(stat.st_size).encode())
        with path.open("rb") as f:
            digest.update(f.read(1 << 20))
            f.seek(max(0, stat.st_size - (1 << 20)))
            digest.update(f.read(1 << 20))
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]
