"""A local Anthropic Messages + Message Batches server, for batch mode on Anthropic models.

``FakeAnthropicServer(responder)`` runs on 127.0.0.1 in a thread (the lifecycle of
tests/fake_openai.py's ``FakeOpenAIServer``); ``srv.base_url`` is what the anthropic SDK and
litellm take as the base (``http://127.0.0.1:PORT``, no ``/v1``). Routes, as the SDK calls them:

* ``POST /v1/messages``: a live call (litellm's), answered by the responder;
* ``POST /v1/messages/batches`` (``{"requests": [{custom_id, params}]}``),
  ``GET /v1/messages/batches`` (``limit``, ``after_id``), ``GET /v1/messages/batches/{id}``,
  ``POST /v1/messages/batches/{id}/cancel``, and ``GET /v1/messages/batches/{id}/results`` (the
  ``results_url`` a batch gives once it has ended; JSONL).

A responder is tests/fake_openai.py's ``(request_json, attempt) -> Reply | str`` (reuse
``keyword_labeler``): it gets the request's Anthropic ``params``, whose last user message's
text is what the conftest RULES key on (``last_user_text`` reads Anthropic's content blocks);
``attempt`` counts earlier requests, live or batched, with the same ``messages``. A request
that forces a tool (``tool_choice: {type: tool}``) is answered with that tool's ``tool_use``
block, its input the reply's content parsed as JSON; every other request with a text block.

A batch is answered on the first poll after it is released: ``srv.hold`` (a
``threading.Event``, set by default) keeps every batch ``in_progress`` while it is clear.
Knobs, readable and settable at any time:

* ``srv.outcome``: ``"ended"`` (default), ``"expired"`` (only the first ``srv.expire_after``
  requests run; the rest get an ``expired`` result) or ``"canceled"`` (as if cancelled by
  someone else: nothing runs, every request gets a ``canceled`` result); ``srv.outcomes`` (a
  list) gives one outcome per batch in creation order, then ``outcome``.
* ``srv.request_error(custom_id, params, attempt) -> str | None``: an Anthropic error type
  (``"overloaded_error"``, ``"invalid_request_error"``, ...) to fail a request with, None to
  answer it.

State: ``srv.created`` (bodies of ``POST /v1/messages/batches``), ``srv.create_headers``,
``srv.batch_requests`` (every request of every batch), ``srv.polls`` (``GET`` of one batch),
``srv.results_reads``, ``srv.live`` (bodies of live ``POST /v1/messages``).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from fake_openai import FakeOpenAIServer, Reply, _as_reply, _message_text, _rough_tokens

RequestError = Callable[[str, dict, int], str | None]
STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _now(offset_h: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=offset_h)).isoformat()


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class FakeAnthropicServer(FakeOpenAIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = threading.Event()
        self.hold.set()
        self.outcome = "ended"
        self.outcomes: list[str] = []
        self.expire_after = 0
        self.request_error: RequestError = lambda custom_id, params, attempt: None
        self.batches: dict[str, dict[str, Any]] = {}
        self.created: list[dict] = []
        self.create_headers: list[dict[str, str]] = []
        self.batch_requests: list[dict] = []
        self.live: list[dict] = []
        self.polls = 0
        self.results_reads = 0
        self._batch_ids = itertools.count(1)
        self._msg_ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._message)
        app.router.add_post("/v1/messages/batches", self._create)
        app.router.add_get("/v1/messages/batches", self._list)
        app.router.add_get("/v1/messages/batches/{id}", self._retrieve)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self._cancel)
        app.router.add_get("/v1/messages/batches/{id}/results", self._results)

    # ------------------------------------------------------------------ answers
    def _attempt(self, params: dict) -> int:
        key = self._key(params.get("messages"))
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        return attempt

    async def _answer(self, params: dict, attempt: int) -> Reply:
        reply = self.responder(params, attempt)
        if hasattr(reply, "__await__"):
            reply = await reply
        return _as_reply(reply)

    def _message_of(self, params: dict, reply: Reply) -> dict[str, Any]:
        choice = params.get("tool_choice") or {}
        if choice.get("type") == "tool":
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._msg_ids):06d}",
                    "name": choice["name"],
                    "input": json.loads(reply.content),
                }
            ]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": reply.content}], "end_turn"
        system = params.get("system") or []
        texts = [_message_text(m.get("content")) for m in params.get("messages") or []]
        texts += [_message_text(system)] if system else []
        prompt = reply.prompt_tokens or sum(_rough_tokens(t) + 3 for t in texts)
        return {
            "id": f"msg_{next(self._msg_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": params.get("model"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": prompt,
                "output_tokens": reply.completion_tokens or _rough_tokens(reply.content),
            },
        }

    async def _message(self, request: web.Request) -> web.Response:
        params = await request.json()
        with self._lock:
            self.live.append(params)
        reply = await self._answer(params, self._attempt(params))
        if reply.status != 200:
            kind = next((k for k, s in STATUS.items() if s == reply.status), "api_error")
            return web.json_response(_error(kind, reply.content), status=reply.status)
        return web.json_response(self._message_of(params, reply))

    # ------------------------------------------------------------------ batches
    def _public(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        requests = body.get("requests") or []
        with self._lock:
            self.created.append(body)
            self.create_headers.append({k.lower(): v for k, v in request.headers.items()})
            self.batch_requests.extend(requests)
            index = len(self.created) - 1
            batch_id = f"msgbatch_{next(self._batch_ids):04d}"
            self.batches[batch_id] = {
                "id": batch_id,
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {
                    "processing": len(requests),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "created_at": _now(),
                "expires_at": _now(24),
                "ended_at": None,
                "cancel_initiated_at": None,
                "archived_at": None,
                "results_url": None,
                "_requests": requests,
                "_outcome": self.outcomes[index] if index < len(self.outcomes) else None,
                "_results": [],
            }
        return web.json_response(self._public(self.batches[batch_id]))

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.json_response(_error("not_found_error", "no such batch"), status=404)
        with self._lock:
            self.polls += 1
        if batch["processing_status"] == "in_progress" and self.hold.is_set():
            await self._run(batch, batch["_outcome"] or self.outcome)
        return web.json_response(self._public(batch))

    async def _list(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", 20))
        after = request.query.get("after_id")
        ordered = sorted(self.batches, reverse=True)  # newest first, as Anthropic lists them
        if after in ordered:
            ordered = ordered[ordered.index(after) + 1 :]
        page = ordered[:limit]
        return web.json_response(
            {
                "data": [self._public(self.batches[b]) for b in page],
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
                "has_more": len(ordered) > limit,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.json_response(_error("not_found_error", "no such batch"), status=404)
        if batch["processing_status"] == "in_progress":
            batch["cancel_initiated_at"] = _now()
            await self._run(batch, "canceled")
        return web.json_response(self._public(batch))

    async def _results(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch["processing_status"] != "ended":
            return web.json_response(_error("not_found_error", "no results yet"), status=404)
        with self._lock:
            self.results_reads += 1
        data = "".join(json.dumps(r) + "\n" for r in batch["_results"])
        return web.Response(body=data.encode(), content_type="application/binary")

    async def _run(self, batch: dict[str, Any], outcome: str) -> None:
        """Answer the batch's requests as its outcome says, and end it."""
        requests = batch["_requests"]
        ran = {"canceled": 0, "expired": self.expire_after}.get(outcome, len(requests))
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        results = []
        for i, row in enumerate(requests):
            custom_id, params = row["custom_id"], row["params"]
            if i >= ran:
                kind = "canceled" if outcome == "canceled" else "expired"
                counts[kind] += 1
                results.append({"custom_id": custom_id, "result": {"type": kind}})
                continue
            attempt = self._attempt(params)
            kind = self.request_error(custom_id, params, attempt)
            if kind is not None:
                counts["errored"] += 1
                error = _error(kind, f"fake {kind}")
                error["request_id"] = f"req_{custom_id}"
                results.append(
                    {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
                )
                continue
            message = self._message_of(params, await self._answer(params, attempt))
            counts["succeeded"] += 1
            results.append(
                {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
            )
        batch["_results"] = results[::-1]  # not in request order, as Anthropic warns
        batch["request_counts"] = counts
        batch["processing_status"] = "ended"
        batch["ended_at"] = _now()
        batch["results_url"] = f"{self.base_url}/v1/messages/batches/{batch['id']}/results"
