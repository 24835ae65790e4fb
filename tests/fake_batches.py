"""A local OpenAI-compatible server with the Files and Batches endpoints, for batch-mode tests.

``FakeBatchServer(responder, ...)`` is a ``FakeOpenAIServer`` (tests/fake_openai.py: live chat
completions, faults, counters) plus:

* ``POST /v1/files`` (multipart: ``file``, ``purpose``), ``GET /v1/files/{id}/content``;
* ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches`` (``limit``, ``after``),
  ``POST /v1/batches/{id}/cancel``.

A batch answers each line with the same responder as a live call (same attempt counting),
on the first poll after it is released: ``srv.hold`` (a ``threading.Event``, set by default)
keeps every batch ``in_progress`` while it is clear. Knobs, each readable and settable at any
time:

* ``srv.outcome``: ``"completed"`` (default), ``"expired"`` (only the first
  ``srv.expire_after`` lines run; the rest get no result), ``"failed"`` (the batch is rejected
  as a whole, no line runs) or ``"cancelled"`` (as if cancelled by someone else, nothing runs);
  ``srv.outcomes`` (a list) gives one outcome per batch in creation order, then ``outcome``.
* ``srv.line_status(custom_id, body, attempt) -> int | None``: an HTTP status to fail a line
  with (its result goes to the error file), None to answer it.

State: ``srv.created`` (bodies of ``POST /v1/batches``), ``srv.batch_lines`` (every line of
every batch input, parsed), ``srv.polls`` (``GET /v1/batches/{id}`` count), ``srv.uploads``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from fake_openai import FakeOpenAIServer, _as_reply, _error_json

LineStatus = Callable[[str, dict, int], int | None]


class FakeBatchServer(FakeOpenAIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = threading.Event()
        self.hold.set()
        self.outcome = "completed"
        self.outcomes: list[str] = []
        self.expire_after = 0
        self.line_status: LineStatus = lambda custom_id, body, attempt: None
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.created: list[dict] = []
        self.batch_lines: list[dict] = []
        self.polls = 0
        self.uploads = 0
        self.azure_calls: list[tuple[str, str, str | None, str | None]] = []
        self._batch_ids = itertools.count(1)

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)
        # Azure OpenAI: the same calls under /openai/, each with ?api-version= and an api-key
        # header (recorded in srv.azure_calls as (method, path, api-version, api-key)).
        for method, path, handler in (
            ("POST", "/openai/files", self._upload),
            ("GET", "/openai/files/{id}/content", self._content),
            ("POST", "/openai/batches", self._create),
            ("GET", "/openai/batches", self._list),
            ("GET", "/openai/batches/{id}", self._retrieve),
            ("POST", "/openai/batches/{id}/cancel", self._cancel),
        ):
            app.router.add_route(method, path, self._azure(handler))

    def _azure(self, handler: Callable) -> Callable:
        async def serve(request: web.Request) -> web.StreamResponse:
            version = request.query.get("api-version")
            self.azure_calls.append(
                (request.method, request.path, version, request.headers.get("api-key"))
            )
            if not version:  # Azure refuses a call without one
                return web.Response(status=404, text=_error_json(404, "api-version missing"))
            return await handler(request)

        return serve

    # ------------------------------------------------------------------ files
    def _file(self, data: bytes, purpose: str) -> str:
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = data
        return file_id

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        data = upload.file.read() if hasattr(upload, "file") else bytes(str(upload), "utf-8")
        with self._lock:
            self.uploads += 1
            file_id = self._file(data, str(form.get("purpose")))
        return web.json_response(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": getattr(upload, "filename", "input.jsonl"),
                "purpose": str(form.get("purpose")),
                "status": "processed",
            }
        )

    async def _content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return web.Response(status=404, text=_error_json(404, "no such file"))
        return web.Response(body=data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ batches
    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return web.Response(
                status=400,
                text=_error_json(400, f"input file {file_id} not found"),
                content_type="application/json",
            )
        with self._lock:
            self.created.append(body)
            batch_id = f"batch_{next(self._batch_ids):04d}"
            index = len(self.created) - 1
            outcome = self.outcomes[index] if index < len(self.outcomes) else None
            lines = [json.loads(x) for x in self.files[file_id].splitlines() if x.strip()]
            self.batch_lines.extend(lines)
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": file_id,
                "completion_window": body.get("completion_window"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_lines": lines,
                "_outcome": outcome,
            }
        return web.json_response(self._public(self.batches[batch_id]))

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.Response(status=404, text=_error_json(404, "no such batch"))
        with self._lock:
            self.polls += 1
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "in_progress"
            if self.hold.is_set():
                await self._run(batch)
        return web.json_response(self._public(batch))

    async def _list(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", 20))
        after = request.query.get("after")
        ordered = sorted(self.batches, reverse=True)  # newest first, as OpenAI lists them
        if after in ordered:
            ordered = ordered[ordered.index(after) + 1 :]
        page = ordered[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [self._public(self.batches[b]) for b in page],
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
                "has_more": len(ordered) > limit,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.Response(status=404, text=_error_json(404, "no such batch"))
        if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            batch["status"] = "cancelled"
        return web.json_response(self._public(batch))

    async def _run(self, batch: dict[str, Any]) -> None:
        """Answer the batch's lines as its outcome says."""
        outcome = batch["_outcome"] or self.outcome
        if outcome == "failed":
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "invalid_request", "message": "the input was rejected"}],
            }
            return
        if outcome == "cancelled":
            batch["status"] = "cancelled"
            return
        lines = batch["_lines"]
        if outcome == "expired":
            lines = lines[: self.expire_after]
        good, bad = [], []
        for line in lines:
            custom_id, body = line["custom_id"], line["body"]
            key = self._key(body.get("messages"))
            with self._lock:
                attempt = self._attempts.get(key, 0)
                self._attempts[key] = attempt + 1
            status = self.line_status(custom_id, body, attempt)
            if status is not None:
                error = json.loads(_error_json(status, f"fake line error {status}"))
                row = {"status_code": status, "request_id": custom_id, "body": error}
                bad.append({"id": f"resp_{custom_id}", "custom_id": custom_id, "response": row})
                continue
            reply = self.responder(body, attempt)
            if hasattr(reply, "__await__"):
                reply = await reply
            completion = self._completion(body, _as_reply(reply))
            row = {"status_code": 200, "request_id": custom_id, "body": completion}
            good.append({"id": f"resp_{custom_id}", "custom_id": custom_id, "response": row})
        with self._lock:
            if good:
                data = "".join(json.dumps(r) + "\n" for r in good).encode()
                batch["output_file_id"] = self._file(data, "batch_output")
            if bad:
                data = "".join(json.dumps(r) + "\n" for r in bad).encode()
                batch["error_file_id"] = self._file(data, "batch_output")
        batch["request_counts"] = {
            "total": len(batch["_lines"]),
            "completed": len(good),
            "failed": len(bad),
        }
        batch["status"] = "expired" if outcome == "expired" else "completed"
