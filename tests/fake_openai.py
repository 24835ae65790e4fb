"""A local, scriptable OpenAI-compatible HTTP server for integration tests.

API
===
``FakeOpenAIServer(responder=None, *, model_ids=("fake-model",), host="127.0.0.1", port=0,
shutdown_timeout=0.25)`` runs an aiohttp app on its own event loop in a daemon thread.
Use it as a context manager (or ``.start()`` / ``.stop()``)::

    with FakeOpenAIServer(keyword_labeler({"great": "positive"}, "negative")) as srv:
        resp = await litellm.acompletion(model="openai/fake-model", api_base=srv.base_url,
                                         api_key="sk-test", messages=msgs, num_retries=0)

* ``srv.base_url`` -> ``"http://127.0.0.1:PORT/v1"``; ``srv.port``.
* ``srv.requests`` -> copy of the JSON bodies received on POST /v1/chat/completions (thread-safe);
  ``srv.request_headers`` -> the matching HTTP headers; ``srv.errors`` -> exceptions raised by
  the responder (each answered with a 500).
* ``srv.count`` -> number of chat-completion requests received, whatever the outcome (also
  counts bodies that were not valid JSON, which get a 400 and are not in ``requests``).
* ``srv.attempts_for(messages)``; ``srv.reset()`` clears requests, count and attempt counters.
* ``srv.wait_idle(quiet_s=0.2)``: returns once no request is being handled and none arrived
  for ``quiet_s`` (use it after killing a client, before reading ``srv.log``).
* ``srv.responder`` may be reassigned at any time.
* Routes: ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``.
  No streaming.

A responder is ``(request_json: dict, attempt: int) -> Reply`` (a ``str`` also works, and so
does a coroutine). ``attempt`` = number of earlier requests with the same ``messages`` (0 on
the first). ``Reply`` fields: ``content``, ``status`` (non-200 -> ``{"error": {"message",
"type", "param", "code"}}`` with ``content`` as message), ``headers``, ``body`` (raw body
instead of the JSON), ``delay_s``, ``logprobs`` (``[(token, logprob, [(alt, logprob), ...])]``;
None -> generated from content: chosen token -0.01, alternatives ``f"{tok}_alt{i}"`` at
-2-i; ``top_logprobs`` truncated to the request's ``top_logprobs``; only sent when the request
has ``logprobs: true``), ``prompt_tokens`` / ``completion_tokens`` (None -> ~len/4),
``drop_connection`` (abort the TCP connection, no response), ``finish_reason`` ("stop"),
``content_type``.
Ready-made: ``constant(label)``, ``keyword_labeler(rules, default, as_json=False)``,
``sequence(*replies)`` (reply ``attempt``, the last one repeated), ``last_user_text(req)``.

Fault injection: ``FakeOpenAIServer(..., faults=Faults({"429": 0.1, "drop": 0.05}, seed=0))``
(a plain ``{kind: rate}`` dict also works; ``srv.faults`` may be reassigned, None = off).
Kinds (``FAULT_KINDS``): ``"429"`` (with ``Retry-After: faults.retry_after``), ``"500"``,
``"503"``, ``"slow"`` (the responder's reply after ``faults.slow_s``, past the client's
timeout), ``"drop"`` (connection closed, no response), ``"malformed"`` (a 200 whose JSON body
is cut short), ``"empty"`` (a 200 with empty content) and ``"off_scale"`` (a 200 whose content
is ``faults.off_scale``, a label outside any label set). The rates add up to at most 1; the
kind of a request is a pure function of (seed, messages, attempt) -- ``faults.pick(messages,
attempt)`` -- so it does not depend on the order in which concurrent requests arrive, and a
test can predict every outcome. ``srv.injected`` counts the faults served per kind;
``srv.log`` has one ``Served`` per request: messages key, attempt, fault, status, and
``delivered`` (the whole response was handed to the socket; False for a drop, or when the
client had gone, e.g. after a timeout).

Findings: litellm 1.110.2 / openai 3.57.0 / aiohttp 3.14.5 (pinned by tests/test_fake_openai.py)
===========================================================================================
Retries: there are two layers, and by default a call is retried silently.
* The openai SDK client inside litellm has ``max_retries`` = 2 by default, so 3 HTTP requests
  per failing call. It retries 408/409/429/5xx and connection errors and sleeps on
  ``Retry-After`` itself. A transient 500 then succeeds and the caller never sees it.
* litellm's own wrapper retries when ``num_retries`` (kwarg) or the global
  ``litellm.num_retries`` is truthy. ``num_retries=N`` ALSO sets the SDK's ``max_retries=N``,
  so a persistent error gives (N+1) + N = 2N+1 requests (N=1 -> 3). When it retries, the
  wrapper sets the global ``litellm.num_retries = None`` (a side effect).
* To disable both, pass ``num_retries=0``: it sets SDK ``max_retries=0`` and beats any global
  ``litellm.num_retries``. ``max_retries=0`` alone also gives exactly 1 request, but only
  while ``litellm.num_retries`` is None (with ``litellm.num_retries=2`` and
  ``max_retries=0``, a 500 gives 3 requests). Passing both is harmless.
* With the openai SDK directly: ``AsyncOpenAI(..., max_retries=0)`` or
  ``client.with_options(max_retries=0)`` (default 2).

Exceptions from ``litellm.acompletion`` (with ``num_retries=0``). Every class is
``litellm.X`` and subclasses ``openai.X`` where one exists. All have ``.status_code`` and
``.message``; ``str(exc)`` contains the server's error message.
* 429 -> ``litellm.RateLimitError`` (is an ``openai.RateLimitError``).
  Retry-After: ``exc.response.headers["retry-after"]`` (``exc.response`` is an
  ``httpx.Response``; its headers are ``httpx.Headers``, so the name is case-insensitive) or
  ``exc.litellm_response_headers["retry-after"]`` (the same ``httpx.Headers``).
  ``exc.headers`` is None: don't use it.
* 500 -> ``litellm.InternalServerError`` (an ``openai.InternalServerError``).
* 503 -> ``litellm.ServiceUnavailableError``. NOT a subclass of InternalServerError; it
  subclasses ``openai.APIStatusError`` directly, so catch it separately.
* 502 -> ``litellm.BadGatewayError``; 504 and 408 -> ``litellm.Timeout`` (status_code kept);
  400 and 422 -> ``BadRequestError``; 401 -> ``AuthenticationError``; 404 -> ``NotFoundError``;
  403, 409 and 529 -> plain ``litellm.APIError``.
* Garbage body with HTTP 200 -> ``litellm.InternalServerError`` with ``status_code == 500``
  (although the server said 200) and ``litellm_response_headers is None``. Message:
  invalid JSON -> "Expecting value: line 1 column 1 (char 0)"; non-JSON content type ->
  "Empty or invalid response from LLM endpoint. Received: '...'"; JSON without choices ->
  "provider returned a response with no 'choices'".
* Dropped connection (``drop_connection``) -> ALSO ``litellm.InternalServerError``,
  ``status_code == 500``, message contains "Connection error." It is NOT
  ``litellm.APIConnectionError`` / ``openai.APIConnectionError``. On the garbage and drop
  paths, ``exc.response`` is a synthetic ``httpx.Response`` (500, empty headers). To tell a
  drop from a real 500, look at the message.
* Client timeout (``timeout=0.3`` with a slow ``delay_s``) -> ``litellm.Timeout``
  (status_code 408; subclasses ``openai.APITimeoutError`` -> ``openai.APIConnectionError``).
* With the plain openai SDK: 429 -> ``openai.RateLimitError`` (``exc.response.headers``);
  drop -> ``openai.APIConnectionError``; invalid JSON body -> a bare
  ``json.JSONDecodeError`` (not wrapped); JSON without choices -> no error
  (``choices=None``).

Successful responses (``litellm.types.utils.ModelResponse``):
* ``resp.choices[0].message.content``, ``resp.choices[0].finish_reason``,
  ``resp.usage.prompt_tokens / completion_tokens / total_tokens`` (passed through from the
  server).
* ``resp.choices[0].logprobs`` is a ``litellm.types.utils.ChoiceLogprobs`` (a pydantic
  ``openai.BaseModel``, not a dict), or None when logprobs were not requested.
  ``.content`` is a list of ``ChatCompletionTokenLogprob`` with ``.token``, ``.logprob``,
  ``.bytes`` and ``.top_logprobs`` (a list of ``TopLogprob`` with ``.token``, ``.logprob``
  and ``.bytes``). Dict-style access also works (``lp["content"][0]["token"]``), and
  ``lp.model_dump()`` gives plain dicts. ``logprobs=True`` without ``top_logprobs`` ->
  ``top_logprobs == []``. litellm strips the ``openai/`` prefix: the server sees
  ``model="fake-model"``.
* Success-path HTTP response headers: ``resp._hidden_params["additional_headers"]``, keys
  prefixed ``"llm_provider-"`` (e.g. ``"llm_provider-x-ratelimit-remaining-requests"``).

Latency and throughput (2-vCPU sandbox under load from other jobs; expect noise):
* ``litellm.acompletion`` against this server: ~6-9 ms per sequential call (up to ~19 ms
  when the box is busy). The first call in a process costs ~0.2 s (client setup).
* Concurrent (64-200 in flight): ~100-190 calls/s per process. litellm's own client-side CPU
  work (~5 ms per call) is the bottleneck, not the server. A benchmark needing ~1,000
  litellm calls/s must spread them over several processes.
* The server alone answers ~1,250-3,200 req/s to an in-process aiohttp client (access log
  off, no per-request heavy work).
* Calling ``asyncio.run`` several times against one server works. litellm logs "LoggingWorker:
  event loop changed" and leaves ResourceWarnings for httpx clients cached on closed loops;
  both are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import inspect
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "FAULT_KINDS",
    "FakeOpenAIServer",
    "Faults",
    "Reply",
    "Responder",
    "constant",
    "keyword_labeler",
    "last_user_text",
    "sequence",
]

TokenLogprob = tuple[str, float, list[tuple[str, float]]]


@dataclass
class Reply:
    """What the fake server answers to one chat-completion request."""

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Raw body sent instead of the generated JSON (for garbage / malformed responses).
    body: str | None = None
    # asyncio.sleep before answering (or before dropping the connection).
    delay_s: float = 0.0
    # [(token, logprob, [(alt_token, alt_logprob), ...]), ...]. Only sent when the
    # request asks for logprobs; None -> generated from `content`.
    logprobs: list[TokenLogprob] | None = None
    # None -> rough estimate (~4 characters per token).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Close the TCP connection without sending any response.
    drop_connection: bool = False
    finish_reason: str = "stop"
    # Content-Type of the response (also used for `body`).
    content_type: str = "application/json"
    # Answer only once this event is set (after `delay_s`): lets a test hold requests in
    # flight and look at them, with no guess of how long that takes on a busy machine.
    hold: threading.Event | None = None


Responder = Callable[[dict, int], Reply]

FAULT_KINDS = ("429", "500", "503", "slow", "drop", "malformed", "empty", "off_scale")


@dataclass
class Faults:
    """Which requests fail, and how: `rates` maps a kind of FAULT_KINDS to its share."""

    rates: Mapping[str, float]
    seed: int = 0
    retry_after: str = "0"  # the 429's Retry-After header (seconds)
    slow_s: float = 5.0  # delay of a "slow" reply: set it past the client's timeout
    off_scale: str = '{"label": "off-scale"}'

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if any(not 0 <= r <= 1 for r in self.rates.values()) or sum(self.rates.values()) > 1:
            raise ValueError("fault rates must be in [0, 1] and add up to at most 1")

    def pick(self, messages: Any, attempt: int) -> str | None:
        """The fault for this request (None: answer normally); same inputs, same answer."""
        key = f"{self.seed}\x00{_messages_key(messages)}\x00{attempt}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        for kind in FAULT_KINDS:
            u -= self.rates.get(kind, 0.0)
            if u < 0:
                return kind
        return None

    def reply(self, kind: str, normal: Callable[[], Reply]) -> Reply:
        if kind in ("429", "500", "503"):
            headers = {"Retry-After": self.retry_after} if kind == "429" else {}
            return Reply(content=f"injected {kind}", status=int(kind), headers=headers)
        if kind == "slow":
            ok = normal()
            return dataclasses.replace(ok, delay_s=max(ok.delay_s, self.slow_s))
        if kind == "drop":
            return Reply(drop_connection=True)
        if kind == "malformed":
            return Reply(body='{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [')
        if kind == "empty":
            return Reply(content="")
        return Reply(content=self.off_scale)


@dataclass
class Served:
    """One chat-completion request as the server handled it."""

    key: str  # the request's messages as canonical JSON
    attempt: int
    fault: str | None
    status: int  # 0 for a dropped connection
    delivered: bool = False


def _messages_key(messages: Any) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- responders


def _as_reply(r: Reply | str) -> Reply:
    return r if isinstance(r, Reply) else Reply(content=str(r))


def constant(label: str) -> Responder:
    """Always answer `label` with status 200."""

    reply = Reply(content=label)

    def responder(request_json: dict, attempt: int) -> Reply:
        return reply

    return responder


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal content parts
        return " ".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def last_user_text(request_json: dict) -> str:
    """Text of the last message with role "user" ("" if none)."""
    for message in reversed(request_json.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def keyword_labeler(rules: dict[str, str], default: str, as_json: bool = False) -> Responder:
    """Label by keyword in the last user message.

    `rules` maps keyword -> label; the first rule (in dict order) whose keyword
    occurs case-insensitively in the last user message wins, else `default`.
    With `as_json=True` the content is `{"label": "..."}`.
    """
    lowered = [(keyword.lower(), label) for keyword, label in rules.items()]

    def responder(request_json: dict, attempt: int) -> Reply:
        text = last_user_text(request_json).lower()
        label = next((lab for kw, lab in lowered if kw in text), default)
        return Reply(content=json.dumps({"label": label}) if as_json else label)

    return responder


def sequence(*replies: Reply | str) -> Responder:
    """Answer replies[attempt] (the last one repeated); strings mean Reply(content=s).

    The attempt number is per distinct `messages`, so e.g.
    `sequence(Reply(status=429, headers={"Retry-After": "1"}), "positive")` makes
    every item fail once and succeed on its retry.
    """
    if not replies:
        raise ValueError("sequence() needs at least one reply")
    fixed = [_as_reply(r) for r in replies]

    def responder(request_json: dict, attempt: int) -> Reply:
        return fixed[min(attempt, len(fixed) - 1)]

    return responder


# --------------------------------------------------------------------------- helpers

_TOKEN_RE = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


def _rough_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _split_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text) or [text]


def _token_entry(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _logprobs_block(reply: Reply, top_n: int) -> dict:
    if reply.logprobs is not None:
        triples = reply.logprobs
    else:
        # Deterministic, plausible values: the chosen token is the most likely one,
        # alternatives get decreasing logprobs.
        triples = [
            (
                tok,
                -0.01,
                [(tok, -0.01)] + [(f"{tok}_alt{i}", -2.0 - i) for i in range(1, 20)],
            )
            for tok in _split_tokens(reply.content)
        ]
    content = []
    for token, logprob, alternatives in triples:
        entry = _token_entry(token, float(logprob))
        entry["top_logprobs"] = [_token_entry(t, float(lp)) for t, lp in alternatives[:top_n]]
        content.append(entry)
    return {"content": content, "refusal": None}


def _error_json(status: int, message: str) -> str:
    err_type, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", str(status))
    )
    return json.dumps(
        {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    )


# --------------------------------------------------------------------------- server


class FakeOpenAIServer:
    """aiohttp OpenAI-compatible server on 127.0.0.1:<free port>, in a background thread.

    Usage::

        with FakeOpenAIServer(keyword_labeler({"great": "positive"}, "negative")) as srv:
            litellm.completion(model="openai/fake-model", api_base=srv.base_url, ...)
            assert srv.count == 1

    The responder can be swapped at any time via ``srv.responder = ...``.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        model_ids: Iterable[str] = ("fake-model",),
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 0.25,
        faults: Faults | Mapping[str, float] | None = None,
    ) -> None:
        self.responder: Responder = responder or constant("ok")
        self.faults = faults  # see the setter
        self.model_ids = list(model_ids)
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._headers: list[dict[str, str]] = []
        self._errors: list[BaseException] = []
        self._attempts: dict[str, int] = {}
        self._count = 0
        self._log: list[Served] = []
        self._active = 0  # chat-completion handlers running
        self._last_event = time.monotonic()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ public state

    @property
    def faults(self) -> Faults | None:
        return self._faults

    @faults.setter
    def faults(self, value: Faults | Mapping[str, float] | None) -> None:
        self._faults = Faults(dict(value)) if isinstance(value, Mapping) else value

    @property
    def log(self) -> list[Served]:
        """One entry per chat-completion request with a JSON body, in arrival order."""
        with self._lock:
            return list(self._log)

    @property
    def injected(self) -> Counter[str]:
        """How many requests got each kind of fault."""
        with self._lock:
            return Counter(s.fault for s in self._log if s.fault)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[dict]:
        """Snapshot (copy) of the JSON bodies of chat-completion requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """Snapshot of the HTTP headers of chat-completion requests (parallel to `requests`)."""
        with self._lock:
            return list(self._headers)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the responder (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def count(self) -> int:
        """Number of POST /v1/chat/completions requests received (any outcome)."""
        with self._lock:
            return self._count

    def wait_idle(self, quiet_s: float = 0.2, timeout: float = 30.0) -> None:
        """Wait until no request is being handled and none arrived for `quiet_s` (after a
        client was killed: requests it had sent may still be in the socket buffers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                quiet = not self._active and time.monotonic() - self._last_event >= quiet_s
            if quiet:
                return
            time.sleep(0.01)
        raise TimeoutError("the fake server did not become idle")

    def attempts_for(self, messages: list) -> int:
        """How many requests with exactly these `messages` were received."""
        with self._lock:
            return self._attempts.get(self._key(messages), 0)

    def reset(self) -> None:
        """Forget recorded requests, the count and the attempt counters."""
        with self._lock:
            self._requests.clear()
            self._headers.clear()
            self._errors.clear()
            self._attempts.clear()
            self._count = 0
            self._log.clear()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAIServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(started))
            except BaseException as exc:
                failure.append(exc)
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="FakeOpenAIServer", daemon=True)
        self._thread.start()
        started.wait(timeout=30)
        if failure:
            self._thread = None
            raise RuntimeError("FakeOpenAIServer failed to start") from failure[0]
        if not started.is_set():
            raise RuntimeError("FakeOpenAIServer did not start within 30 s")
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self._stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=30)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self, started: threading.Event) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        self._routes(app)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self.shutdown_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        started.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def _routes(self, app: web.Application) -> None:
        """More routes for a subclass (tests/fake_batches.py: Files and Batches)."""

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _key(messages: Any) -> str:
        return _messages_key(messages)

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}
            for model_id in self.model_ids
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._active += 1
            self._last_event = time.monotonic()
        try:
            return await self._handle(request)
        finally:
            with self._lock:
                self._active -= 1
                self._last_event = time.monotonic()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("request body is not a JSON object")
        except ValueError as exc:
            with self._lock:
                self._count += 1
            return web.Response(
                status=400,
                text=_error_json(400, f"invalid JSON body: {exc}"),
                content_type="application/json",
            )

        key = self._key(body.get("messages"))
        faults = self._faults
        with self._lock:
            self._count += 1
            self._requests.append(body)
            self._headers.append(dict(request.headers))
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            fault = faults.pick(body.get("messages"), attempt) if faults else None
            served = Served(key, attempt, fault, 0)
            self._log.append(served)

        try:
            if fault and fault != "slow":
                assert faults is not None
                reply = faults.reply(fault, Reply)
            else:
                reply = self.responder(body, attempt)
                if inspect.isawaitable(reply):
                    reply = await reply
                reply = _as_reply(reply)
                if fault:
                    assert faults is not None
                    reply = faults.reply(fault, lambda r=reply: r)
        except Exception as exc:
            with self._lock:
                self._errors.append(exc)
            served.status = 500
            return web.Response(
                status=500,
                text=_error_json(500, f"responder raised {type(exc).__name__}: {exc}"),
                content_type="application/json",
            )

        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        while reply.hold is not None and not reply.hold.is_set():
            await asyncio.sleep(0.01)  # polled: a thread per held request would run out

        if reply.drop_connection:
            transport = request.transport
            if transport is not None:
                transport.abort()
            # End the handler without a response: aiohttp treats this like a client
            # disconnect (no traceback logged).
            raise asyncio.CancelledError()

        if reply.body is not None:
            text = reply.body
        elif reply.status != 200:
            text = _error_json(reply.status, reply.content or f"fake error (HTTP {reply.status})")
        else:
            text = json.dumps(self._completion(body, reply), ensure_ascii=False)
        if any(name.lower() == "content-type" for name in reply.headers):
            response = web.Response(status=reply.status, text=text, headers=reply.headers)
        else:
            response = web.Response(
                status=reply.status,
                text=text,
                headers=reply.headers,
                content_type=reply.content_type,
            )
        served.status = reply.status
        # Send it here (not after returning) to know whether it reached the socket.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.prepare(request)
            await response.write_eof()
            served.delivered = request.transport is not None
        return response

    def _completion(self, body: dict, reply: Reply) -> dict:
        messages = body.get("messages") or []
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(
                _rough_tokens(_message_text(m.get("content"))) + 3
                for m in messages
                if isinstance(m, dict)
            )
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = _rough_tokens(reply.content)
        want_logprobs = bool(body.get("logprobs"))
        top_n = int(body.get("top_logprobs") or 0)
        n = max(1, int(body.get("n") or 1))
        choices = []
        for index in range(n):
            choice: dict[str, Any] = {
                "index": index,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "logprobs": _logprobs_block(reply, top_n) if want_logprobs else None,
                "finish_reason": reply.finish_reason,
            }
            choices.append(choice)
        return {
            "id": f"chatcmpl-fake{next(self._ids):08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake-model",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * n,
                "total_tokens": prompt_tokens + completion_tokens * n,
            },
            "system_fingerprint": "fp_fake",
        }
