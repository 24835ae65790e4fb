"""Any litellm model: OpenAI, Anthropic, Gemini, OpenAI-compatible servers via `api_base`...

litellm is imported here only, and only when a call is not in the cache. Its own retries
are switched off: the runner retries (with backoff that honours Retry-After), so one place
counts attempts and a budget is never overshot by hidden retries.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from harness.core.errors import UserError
from harness.core.records import CallSpec, ProviderReply, TokenLogprobRecord
from harness.providers import ProviderError

if TYPE_CHECKING:  # a type only: providers sit below the config that describes them
    from harness.config import ModelConfig

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices at import


def _litellm() -> Any:
    if os.environ.get("LITELLM_LOG") == "":
        del os.environ["LITELLM_LOG"]  # litellm fails to import with an empty log level
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LiteLLMProvider:
    def __init__(self, model: ModelConfig):
        self.config = model
        self.litellm = _litellm()
        self.api_key = self._api_key()

    def _api_key(self) -> str | None:
        cfg = self.config
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise UserError.at(
                    f"model '{cfg.id}' needs an API key in ${cfg.api_key_env}, which is not set",
                    key=f"models.{cfg.id}.api_key_env",
                    hint=f"export {cfg.api_key_env}=... (keys never go in the config)",
                )
            check_key_destination(cfg)
            return key
        if cfg.api_base:
            return "sk-no-key"  # OpenAI-compatible local servers accept any key
        check = self.litellm.validate_environment(model=cfg.model)
        missing = check.get("missing_keys") or []
        if missing:
            raise UserError.at(
                f"model '{cfg.id}' ({cfg.model}) needs {', '.join(missing)} in the environment",
                key=f"models.{cfg.id}",
                hint=f"export {missing[0]}=... or set api_key_env",
            )
        return None

    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply:
        cfg = self.config
        kwargs = request_params(spec)
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        start = time.perf_counter()
        try:
            resp = await self.litellm.acompletion(
                model=cfg.model,
                messages=[dict(m) for m in spec.messages],
                timeout=timeout_s,
                num_retries=0,
                max_retries=0,
                **kwargs,
            )
        except Exception as exc:  # litellm maps every provider's errors onto its own classes
            raise classify(exc, self.litellm, secret=self.api_key) from None
        latency = time.perf_counter() - start
        try:
            choice = resp.choices[0]
            content = choice.message.content
        except (AttributeError, IndexError) as exc:
            raise ProviderError("bad_response", f"no choices in response: {exc}", True) from None
        usage = getattr(resp, "usage", None)
        if content and self.api_key:
            # A server (or a prompt-injected model) may echo the credentials in its answer;
            # the reply is cached and written to labels.jsonl, so mask them first.
            content = mask_secrets(content, self.api_key)
        return ProviderReply(
            content=content,
            token_logprobs=_token_logprobs(getattr(choice, "logprobs", None)),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=self._cost(resp, usage),
            provider_model=getattr(resp, "model", None),
            latency_s=latency,
        )

    def _cost(self, resp: Any, usage: Any) -> float | None:
        cfg = self.config
        if cfg.input_cost_per_mtok is not None or cfg.output_cost_per_mtok is not None:
            tin = getattr(usage, "prompt_tokens", 0) or 0
            tout = getattr(usage, "completion_tokens", 0) or 0
            return (
                tin * (cfg.input_cost_per_mtok or 0) + tout * (cfg.output_cost_per_mtok or 0)
            ) / 1e6
        # litellm has priced the reply already (None: a model its price map lacks); asking
        # completion_cost again costs about a fifth of a call's CPU time, mostly on the
        # unknown-model path. Only a reply without that field is priced here.
        hidden = getattr(resp, "_hidden_params", None)
        if isinstance(hidden, dict) and "response_cost" in hidden:
            cost = hidden["response_cost"]
            return None if cost is None else float(cost)
        try:
            return float(self.litellm.completion_cost(completion_response=resp))
        except Exception:  # unknown model in the price map: cost unknown, not zero
            return None


def request_params(spec: CallSpec) -> dict[str, Any]:
    """The chat-completion parameters of a call besides model and messages: the same for a
    live call and a line of a batch (harness/providers/openai_batch.py), so both ask the
    same question and share one cache entry."""
    kwargs: dict[str, Any] = dict(spec.params)
    if "seed" in kwargs:  # one seed for all samples would make them all the same answer
        kwargs["seed"] = int(kwargs["seed"]) + spec.sample
    if spec.response_schema is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "label", "schema": dict(spec.response_schema), "strict": True},
        }
    if spec.top_logprobs:
        kwargs.update(logprobs=True, top_logprobs=spec.top_logprobs)
    return kwargs


SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_key_destination(cfg: ModelConfig) -> None:
    """A config (perhaps from a pull request) names both the key variable and api_base: it
    could send any secret in the environment to a server it chooses. A key goes to a
    custom api_base only on this machine or on a host the environment allows
    (PRELABEL_ALLOWED_API_HOSTS, comma-separated): a config cannot allow itself."""
    if not cfg.api_base:
        return  # the provider's own endpoint, chosen by litellm from the model string
    host = (urlparse(cfg.api_base).hostname or "").lower()
    allowed = {
        h.strip().lower() for h in os.environ.get("PRELABEL_ALLOWED_API_HOSTS", "").split(",")
    }
    if host in LOCAL_HOSTS or host in allowed - {""}:
        return
    raise UserError.at(
        f"model '{cfg.id}' would send ${cfg.api_key_env} to {host}, a host not allowed",
        key=f"models.{cfg.id}.api_base",
        hint=f"if {host} is yours, export PRELABEL_ALLOWED_API_HOSTS={host} (an environment "
        "variable, so a config from a pull request cannot allow a host by itself)",
    )


def mask_secrets(text: str, secret: str | None = None) -> str:
    """Replace the configured key and every secret-looking environment value (litellm may
    have picked up OPENAI_API_KEY and friends by itself) before text is written anywhere."""
    values = _secret_env_values()
    if secret:
        values.add(secret)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[secret]")
    return text


def _secret_env_values() -> set[str]:
    """Values of the secret-looking environment variables, read now (a rotated key is
    masked too). Which names look secret is remembered per set of names: matching the
    pattern against every name took most of a call's masking (0.2 ms, every answer)."""
    names = frozenset(os.environ)
    secret_names = _SECRET_NAMES.get(names)
    if secret_names is None:
        secret_names = tuple(k for k in names if SECRET_ENV.search(k))
        _SECRET_NAMES.clear()
        _SECRET_NAMES[names] = secret_names
    return {v for k in secret_names if len(v := os.environ.get(k, "")) >= 8}


_SECRET_NAMES: dict[frozenset[str], tuple[str, ...]] = {}


def classify(exc: Exception, litellm: Any, secret: str | None = None) -> ProviderError:
    """Map a litellm exception to a failure kind, retryability and Retry-After.

    A server may echo the credentials in its error message, and the detail ends up in
    labels.jsonl: `secret` (the API key) is masked before the message is cut short.
    """
    text = mask_secrets(str(exc), secret)
    detail = text.splitlines()[0][:300] if text else type(exc).__name__
    status = getattr(exc, "status_code", None)
    refused = status in (400, 402, 403, 429) or isinstance(exc, litellm.RateLimitError)
    if refused and (status == 402 or _out_of_quota(exc, text)):  # waiting won't bring credit
        return ProviderError("quota", detail, retryable=False, fatal=True)
    if isinstance(exc, litellm.AuthenticationError) or status in (401, 403):
        return ProviderError("auth", detail, retryable=False, fatal=True)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return ProviderError("rate_limited", detail, True, retry_after(exc))
    if isinstance(exc, litellm.Timeout):
        return ProviderError("timeout", detail, True)
    if isinstance(exc, litellm.NotFoundError) or status == 404:
        return ProviderError("not_found", detail, retryable=False, fatal=True)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ProviderError("context_window", detail, retryable=False)
    if isinstance(exc, litellm.BadRequestError) or status in (400, 422):
        return ProviderError("bad_request", detail, retryable=False)
    # litellm reports a malformed body and a dropped connection as a 500 too; only the
    # message tells them apart (checked against litellm 1.110 in tests/test_fake_openai.py).
    if "Connection error" in detail:
        return _connection(exc, detail, secret)
    if any(s in detail for s in ("Expecting value", "Empty or invalid response", "'choices'")):
        return ProviderError("bad_response", detail, True)
    if isinstance(status, int) and status >= 500:
        return ProviderError(f"http_{status}", detail, True, retry_after(exc))
    if isinstance(exc, litellm.APIConnectionError):
        return _connection(exc, detail, secret)
    return ProviderError("provider_error", f"{type(exc).__name__}: {detail}", True)


# What providers say when the account has no quota or credit left (OpenAI's 429
# insufficient_quota, Anthropic's 400 "credit balance is too low", OpenRouter's 402...).
# Not "billing" alone: OpenAI's ordinary rate-limit messages link to the billing page.
QUOTA = re.compile(
    r"insufficient[_ ]quota|exceeded your current quota|credit balance is too low"
    r"|insufficient (?:credits?|funds|balance)|out of credits?|payment required",
    re.IGNORECASE,
)


def _out_of_quota(exc: Exception, text: str) -> bool:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):  # the error object's code and type, when litellm kept them
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        text = f"{text} {inner.get('code', '')} {inner.get('type', '')}"
    return bool(QUOTA.search(text))


def _connection(exc: Exception, detail: str, secret: str | None) -> ProviderError:
    unreachable, why = _unreachable(exc)
    if unreachable:  # the root cause is the useful part: refused, or host not found
        detail = f"{detail} ({mask_secrets(why, secret)[:200]})"
    return ProviderError("connection", detail, True, unreachable=unreachable)


def _unreachable(exc: BaseException) -> tuple[str | None, str]:
    """("refused" | "dns" | "connect", root message) when no connection was made at all;
    (None, "") for anything else, e.g. a server that dropped an open connection. litellm
    wraps the transport error several times: walk the chain of causes to the root."""
    seen: BaseException | None = exc
    found: tuple[str | None, str] = (None, "")
    for _ in range(12):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "refused", str(seen)
        if isinstance(seen, socket.gaierror):
            return "dns", str(seen)
        if type(seen).__name__ in ("ConnectError", "ClientConnectorError"):
            # aiohttp names the SSL context object by its address: drop it, so that two
            # identical failures have identical details (fail fast compares them).
            why = re.sub(r" ?ssl:<[^>]*>", "", (str(seen).splitlines() or [""])[0])
            found = ("connect", why)
        seen = seen.__cause__ or seen.__context__
    return found


def retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header, wherever litellm put the response headers."""
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ):
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def _token_logprobs(logprobs: Any) -> list[TokenLogprobRecord] | None:
    if logprobs is None:
        return None
    content = (
        logprobs.get("content")
        if isinstance(logprobs, dict)
        else getattr(logprobs, "content", None)
    )
    if not content:
        return None
    out = []
    for t in content:
        get = t.get if isinstance(t, dict) else lambda k, t=t: getattr(t, k, None)
        tops = get("top_logprobs") or []
        out.append(
            TokenLogprobRecord(
                str(get("token")),
                float(get("logprob")),
                tuple(
                    (
                        str(a["token"] if isinstance(a, dict) else a.token),
                        float(a["logprob"] if isinstance(a, dict) else a.logprob),
                    )
                    for a in tops
                ),
            )
        )
    return out
