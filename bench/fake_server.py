"""A minimal OpenAI-compatible chat-completions server for the benchmarks (aiohttp).

Run in its own process, so the server's CPU time is not taken from the client being
measured (on 2 cores the in-thread tests/fake_openai.py server would share the client's
GIL). It answers every request after `--latency` seconds with a keyword label
("great" -> positive, "awful" -> negative, else neutral), token usage and, when asked
(`logprobs: true`), the label token's log-probability with the other labels as its top
alternatives, in the JSON shape of the OpenAI API. No request is logged or stored, so it
runs in constant memory.

    python bench/fake_server.py --latency 0.05 [--port 0]

prints `PORT <n>` on stdout once it listens; stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import signal
import sys
import time

from aiohttp import web

RULES = (("great", "positive"), ("awful", "negative"))
DEFAULT = "neutral"
LABELS = ("positive", "negative", "neutral")


def user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def label_for(text: str) -> str:
    low = text.lower()
    return next((label for kw, label in RULES if kw in low), DEFAULT)


def logprobs_block(content: str, text: str, top_n: int) -> dict:
    """One token (the label) with a log-prob that varies by item, and the other labels as
    its alternatives: a confidence source like a real model's."""
    h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") / 2**32
    chosen = -0.02 - 1.0 * h  # p(label) between ~0.36 and ~0.98
    rest = [label for label in LABELS if label != content]
    alts = [(content, chosen)] + [(r, chosen - 1.0 - i) for i, r in enumerate(rest)]
    entry = lambda t, lp: {"token": t, "logprob": lp, "bytes": list(t.encode())}  # noqa: E731
    token = entry(content, chosen)
    token["top_logprobs"] = [entry(t, lp) for t, lp in alts[:top_n]]
    return {"content": [token], "refusal": None}


def make_app(latency_s: float) -> web.Application:
    ids = itertools.count(1)

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        text = user_text(body)
        content = label_for(text)
        logprobs = None
        if body.get("logprobs"):
            logprobs = logprobs_block(content, text, int(body.get("top_logprobs") or 0))
        prompt_tokens = sum(
            len(str(m.get("content") or "")) // 4 + 3 for m in body.get("messages") or []
        )
        data = {
            "id": f"chatcmpl-bench{next(ids):09d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 1,
                "total_tokens": prompt_tokens + 1,
            },
            "system_fingerprint": "fp_bench",
        }
        return web.Response(text=json.dumps(data), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model"}]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


async def serve(host: str, port: int, latency_s: float) -> None:
    runner = web.AppRunner(make_app(latency_s), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
