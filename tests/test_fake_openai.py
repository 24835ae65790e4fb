"""Tests for tests/fake_openai.py: real HTTP through urllib, the openai SDK and litellm.

They also pin down the litellm behaviours documented in fake_openai's module
docstring (exception classes, Retry-After access, logprobs shape, retry knobs),
so a litellm upgrade that changes them fails here first.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.http

try:  # tests/ on sys.path (pytest rootdir-relative import, no tests/__init__.py)
    from fake_openai import FakeOpenAIServer, Reply, constant, keyword_labeler, sequence
except ImportError:  # tests is a package
    from fake_openai import FakeOpenAIServer, Reply, constant, keyword_labeler, sequence

MESSAGES = [
    {"role": "system", "content": "Label the sentiment."},
    {"role": "user", "content": "What a great movie"},
]


@pytest.fixture
def srv():
    with FakeOpenAIServer(constant("positive")) as server:
        yield server


def _post(url: str, payload: dict | bytes, timeout: float = 10.0):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=timeout)


def _chat(base_url: str, messages=MESSAGES, timeout: float = 60.0, **extra) -> dict:
    with _post(
        base_url + "/chat/completions",
        {"model": "fake-model", "messages": messages, **extra},
        timeout=timeout,
    ) as resp:
        return json.loads(resp.read())


# --------------------------------------------------------------------------- raw HTTP


def test_raw_http_completion_models_and_state(srv):
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
    assert srv.port > 0

    body = _chat(srv.base_url, temperature=0)
    assert body["object"] == "chat.completion"
    assert body["model"] == "fake-model"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"] == {"role": "assistant", "content": "positive", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    with urllib.request.urlopen(srv.base_url + "/models", timeout=10) as resp:
        models = json.loads(resp.read())
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "fake-model"

    assert srv.count == 1  # GET /models is not counted
    assert srv.requests == [{"model": "fake-model", "messages": MESSAGES, "temperature": 0}]
    assert srv.request_headers[0]["Content-Type"] == "application/json"

    srv.reset()
    assert srv.count == 0 and srv.requests == [] and srv.attempts_for(MESSAGES) == 0


def test_raw_http_logprobs_generated_and_top_n(srv):
    srv.responder = constant('{"label": "positive"}')
    body = _chat(srv.base_url, logprobs=True, top_logprobs=4)
    content = body["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == '{"label": "positive"}'
    for tok in content:
        assert tok["bytes"] == list(tok["token"].encode())
        assert len(tok["top_logprobs"]) == 4
        assert tok["top_logprobs"][0]["token"] == tok["token"]
        assert {"token", "logprob", "bytes"} <= set(tok["top_logprobs"][1])
        assert tok["logprob"] <= 0

    # logprobs without top_logprobs -> empty alternatives
    body = _chat(srv.base_url, logprobs=True)
    assert all(t["top_logprobs"] == [] for t in body["choices"][0]["logprobs"]["content"])


def test_raw_http_error_statuses_bodies_and_invalid_json(srv):
    srv.responder = lambda req, attempt: Reply(status=429, headers={"Retry-After": "7"})
    with pytest.raises(urllib.error.HTTPError) as info:
        _chat(srv.base_url)
    assert info.value.code == 429
    assert info.value.headers["Retry-After"] == "7"
    err = json.loads(info.value.read())["error"]
    assert err["code"] == "rate_limit_exceeded" and err["message"] and err["type"]

    srv.responder = lambda req, attempt: Reply(body="not json at all", status=200)
    with _post(srv.base_url + "/chat/completions", {"messages": []}) as resp:
        assert resp.read() == b"not json at all"

    with pytest.raises(urllib.error.HTTPError) as info:
        _post(srv.base_url + "/chat/completions", b"{broken")
    assert info.value.code == 400
    assert srv.count == 3  # invalid JSON is counted ...
    assert len(srv.requests) == 2  # ... but has no body to record


def test_responder_exception_becomes_500_and_is_recorded(srv):
    def boom(req, attempt):
        raise KeyError("nope")

    srv.responder = boom
    with pytest.raises(urllib.error.HTTPError) as info:
        _chat(srv.base_url)
    assert info.value.code == 500
    assert "KeyError" in json.loads(info.value.read())["error"]["message"]
    assert isinstance(srv.errors[0], KeyError)


def test_drop_connection_raw(srv):
    srv.responder = lambda req, attempt: Reply(drop_connection=True)
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        _chat(srv.base_url)
    # the server is still healthy afterwards
    srv.responder = constant("ok")
    assert _chat(srv.base_url)["choices"][0]["message"]["content"] == "ok"


def test_attempt_numbers_and_sequence(srv):
    seen: list[tuple[str, int]] = []
    inner = sequence(Reply(status=503), Reply(status=429), "third", "last")

    def recording(req, attempt):
        seen.append((req["messages"][-1]["content"], attempt))
        return inner(req, attempt)

    srv.responder = recording
    a = [{"role": "user", "content": "a"}]
    b = [{"role": "user", "content": "b"}]
    statuses = []
    for messages in (a, a, b, a, a, a, b):
        try:
            statuses.append(_chat(srv.base_url, messages)["choices"][0]["message"]["content"])
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert seen == [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("a", 3), ("a", 4), ("b", 1)]
    assert statuses == [503, 429, 503, "third", "last", "last", 429]
    assert srv.count == 7
    assert srv.attempts_for(a) == 5 and srv.attempts_for(b) == 2


def test_keyword_labeler_and_reply_fields(srv):
    srv.responder = keyword_labeler({"terrible": "negative", "great": "positive"}, "neutral")
    assert _chat(srv.base_url)["choices"][0]["message"]["content"] == "positive"  # case-insensitive
    msgs = [{"role": "user", "content": "GREAT but TERRIBLE"}]
    # first matching rule (in dict order) wins
    assert _chat(srv.base_url, msgs)["choices"][0]["message"]["content"] == "negative"
    msgs = [
        {"role": "user", "content": "great"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "meh"},
    ]
    # only the last user message counts
    assert _chat(srv.base_url, msgs)["choices"][0]["message"]["content"] == "neutral"
    parts = [{"role": "user", "content": [{"type": "text", "text": "so great"}]}]
    assert _chat(srv.base_url, parts)["choices"][0]["message"]["content"] == "positive"

    srv.responder = keyword_labeler({"great": "positive"}, "neutral", as_json=True)
    assert json.loads(_chat(srv.base_url)["choices"][0]["message"]["content"]) == {
        "label": "positive"
    }

    srv.responder = lambda req, attempt: Reply(
        content="yes",
        prompt_tokens=11,
        completion_tokens=2,
        finish_reason="length",
        headers={"X-Custom": "1"},
    )
    body = _chat(srv.base_url)
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    assert body["choices"][0]["finish_reason"] == "length"


def test_delay_and_concurrency(srv):
    """20 requests are in the server at once (held until the test lets them go): it does not
    serialise them. Shown by state, not by timing, so a busy machine cannot break it."""
    release = threading.Event()
    srv.responder = lambda req, attempt: Reply(content="slow", delay_s=0.05, hold=release)
    results: list[str] = []

    def worker(i: int) -> None:
        body = _chat(srv.base_url, [{"role": "user", "content": f"item {i}"}], timeout=600)
        results.append(body["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    while srv.count < 20 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    assert srv.count == 20 and results == []  # all twenty in flight together
    release.set()
    for t in threads:
        t.join()
    assert results == ["slow"] * 20
    assert srv.count == 20 and len(srv.requests) == 20


def test_stop_is_prompt_with_request_in_flight():
    server = FakeOpenAIServer(lambda req, attempt: Reply(delay_s=30)).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            _chat(server.base_url, timeout=60)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 5
    while server.count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 25  # did not wait for the 30 s answer
    t.join(10)
    assert errors  # the in-flight client saw the connection go away


# --------------------------------------------------------------------------- openai SDK


def test_openai_sdk_async_and_sync(srv):
    openai = pytest.importorskip("openai")
    srv.responder = keyword_labeler({"great": "positive"}, "negative")

    async def run():
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0)
        try:
            resp = await client.chat.completions.create(
                model="fake-model", messages=MESSAGES, logprobs=True, top_logprobs=2
            )
            assert resp.choices[0].message.content == "positive"
            assert (
                resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
            )
            top = resp.choices[0].logprobs.content[0].top_logprobs
            assert len(top) == 2 and top[0].token == "positive"

            srv.responder = lambda req, attempt: Reply(status=429, headers={"Retry-After": "3"})
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(model="fake-model", messages=MESSAGES)
            assert info.value.status_code == 429
            assert info.value.response.headers["retry-after"] == "3"

            srv.responder = lambda req, attempt: Reply(drop_connection=True)
            with pytest.raises(openai.APIConnectionError):
                await client.chat.completions.create(model="fake-model", messages=MESSAGES)

            srv.responder = lambda req, attempt: Reply(body="garbage")
            with pytest.raises(json.JSONDecodeError):  # the SDK does NOT wrap this one
                await client.chat.completions.create(model="fake-model", messages=MESSAGES)
        finally:
            await client.close()

    asyncio.run(run())

    srv.responder = constant("sync-ok")
    with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as client:
        resp = client.chat.completions.create(model="fake-model", messages=MESSAGES)
        assert resp.choices[0].message.content == "sync-ok"
        assert [m.id for m in client.models.list()] == ["fake-model"]
    assert srv.request_headers[-1]["Authorization"] == "Bearer sk-test"


def test_openai_sdk_default_retries_are_internal(srv):
    openai = pytest.importorskip("openai")
    srv.responder = sequence(Reply(status=500), "recovered")

    async def run():
        # default max_retries=2
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test")
        try:
            resp = await client.chat.completions.create(model="fake-model", messages=MESSAGES)
        finally:
            await client.close()
        return resp

    assert asyncio.run(run()).choices[0].message.content == "recovered"
    assert srv.count == 2  # the 500 was retried inside the SDK, invisibly to the caller


# --------------------------------------------------------------------------- litellm

litellm_params = {"model": "openai/fake-model", "api_key": "sk-test"}


@pytest.fixture
def litellm():
    mod = pytest.importorskip("litellm")
    mod.suppress_debug_info = True
    saved = mod.num_retries
    yield mod
    mod.num_retries = saved


def _acall(litellm, srv, **kwargs):
    kwargs.setdefault("messages", MESSAGES)
    return asyncio.run(litellm.acompletion(api_base=srv.base_url, **litellm_params, **kwargs))


def _acall_exc(litellm, srv, **kwargs) -> BaseException:
    try:
        _acall(litellm, srv, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_litellm_content_usage_logprobs(litellm, srv):
    srv.responder = keyword_labeler({"great": "positive"}, "negative")
    resp = _acall(litellm, srv, logprobs=True, top_logprobs=3, num_retries=0)
    assert resp.choices[0].message.content == "positive"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens

    lp = resp.choices[0].logprobs
    assert type(lp).__name__ == "ChoiceLogprobs"  # pydantic object, not a dict
    first = lp.content[0]
    assert (first.token, first.logprob, first.bytes) == ("positive", -0.01, list(b"positive"))
    assert [t.token for t in first.top_logprobs] == ["positive", "positive_alt1", "positive_alt2"]
    assert first.top_logprobs[1].logprob == -3.0
    # dict-style access works too, and model_dump() gives plain dicts
    assert lp["content"][0]["token"] == "positive"
    assert lp.model_dump()["content"][0]["top_logprobs"][0]["token"] == "positive"

    # explicit logprobs, truncated to the requested top_logprobs
    srv.responder = lambda req, attempt: Reply(
        content="yes", logprobs=[("yes", -0.2, [("yes", -0.2), ("no", -1.8), ("maybe", -4.0)])]
    )
    resp = _acall(litellm, srv, logprobs=True, top_logprobs=2, num_retries=0)
    tok = resp.choices[0].logprobs.content[0]
    assert tok.token == "yes" and tok.logprob == -0.2
    assert [(t.token, t.logprob) for t in tok.top_logprobs] == [("yes", -0.2), ("no", -1.8)]

    # not requested -> None
    resp = _acall(litellm, srv, num_retries=0)
    assert resp.choices[0].logprobs is None
    assert srv.requests[-1]["model"] == "fake-model"  # "openai/" prefix stripped
    assert srv.requests[-2]["logprobs"] is True and srv.requests[-2]["top_logprobs"] == 2


def test_litellm_sync_completion_and_response_headers(litellm, srv):
    srv.responder = lambda req, attempt: Reply(
        content="ok", headers={"x-ratelimit-remaining-requests": "99"}
    )
    resp = litellm.completion(
        api_base=srv.base_url, messages=MESSAGES, num_retries=0, **litellm_params
    )
    assert resp.choices[0].message.content == "ok"
    # success-path response headers (prefixed) live in _hidden_params
    assert (
        resp._hidden_params["additional_headers"]["llm_provider-x-ratelimit-remaining-requests"]
        == "99"
    )


@pytest.mark.parametrize("knob", [{"num_retries": 0}, {"max_retries": 0}])
def test_litellm_429_retry_after(litellm, srv, knob):
    srv.responder = lambda req, attempt: Reply(
        status=429, headers={"Retry-After": "40"}, content="slow down"
    )
    start = time.perf_counter()
    exc = _acall_exc(litellm, srv, **knob)
    assert time.perf_counter() - start < 30  # nobody slept on the 40 s Retry-After
    assert srv.count == 1  # no internal retries
    assert isinstance(exc, litellm.RateLimitError)
    assert exc.status_code == 429
    assert "slow down" in str(exc)
    assert exc.response.headers["retry-after"] == "40"  # httpx.Headers, case-insensitive
    assert exc.response.headers["Retry-After"] == "40"
    assert exc.litellm_response_headers["retry-after"] == "40"


def test_litellm_default_retries_hide_transient_errors(litellm, srv):
    # Without num_retries/max_retries the openai SDK inside litellm retries twice.
    srv.responder = sequence(Reply(status=500), "recovered")
    resp = _acall(litellm, srv)
    assert resp.choices[0].message.content == "recovered"
    assert srv.count == 2

    srv.reset()
    srv.responder = lambda req, attempt: Reply(status=500)
    _acall_exc(litellm, srv)
    assert srv.count == 3  # 1 + openai SDK max_retries default 2


def test_litellm_retry_knobs(litellm, srv):
    srv.responder = lambda req, attempt: Reply(status=500)

    # num_retries=N: SDK max_retries=N (N+1 requests) then litellm's wrapper makes N more -> 2N+1
    exc = _acall_exc(litellm, srv, num_retries=1)
    assert isinstance(exc, litellm.InternalServerError)
    assert srv.count == 3

    # global litellm.num_retries is used by the wrapper when num_retries is not passed ...
    srv.reset()
    litellm.num_retries = 2
    _acall_exc(litellm, srv, max_retries=0)
    assert srv.count == 3
    assert litellm.num_retries is None  # ... and litellm resets the global to None when it retries!

    # ... but an explicit num_retries=0 wins over the global
    srv.reset()
    litellm.num_retries = 2
    _acall_exc(litellm, srv, num_retries=0)
    assert srv.count == 1


@pytest.mark.parametrize(
    ("status", "cls_name"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (403, "APIError"),
        (404, "NotFoundError"),
        (408, "Timeout"),
        (422, "BadRequestError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (502, "BadGatewayError"),
        (503, "ServiceUnavailableError"),
        (504, "Timeout"),
    ],
)
def test_litellm_status_mapping(litellm, srv, status, cls_name):
    srv.responder = lambda req, attempt: Reply(status=status)
    exc = _acall_exc(litellm, srv, num_retries=0)
    assert type(exc) is getattr(litellm, cls_name), type(exc)
    assert exc.status_code == status
    assert srv.count == 1


def test_litellm_500_and_503(litellm, srv):
    import openai

    srv.responder = lambda req, attempt: Reply(status=500, content="kaputt")
    exc = _acall_exc(litellm, srv, num_retries=0)
    assert type(exc) is litellm.InternalServerError
    assert isinstance(exc, openai.InternalServerError)
    assert exc.status_code == 500 and "kaputt" in str(exc)

    srv.responder = lambda req, attempt: Reply(status=503)
    exc = _acall_exc(litellm, srv, num_retries=0)
    assert type(exc) is litellm.ServiceUnavailableError
    assert not isinstance(exc, openai.InternalServerError)  # 503 is a sibling, not a subclass
    assert isinstance(exc, openai.APIStatusError)


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        ("this is not json {", "application/json", "Expecting value"),
        ("<html>bad gateway</html>", "text/html", "Empty or invalid response"),
        ('{"foo": 1}', "application/json", "no 'choices'"),
    ],
)
def test_litellm_garbage_body(litellm, srv, body, content_type, fragment):
    srv.responder = lambda req, attempt: Reply(body=body, content_type=content_type)
    exc = _acall_exc(litellm, srv, num_retries=0)
    assert type(exc) is litellm.InternalServerError
    assert exc.status_code == 500  # although the server said 200
    assert fragment in str(exc)
    assert exc.litellm_response_headers is None
    assert srv.count == 1


def test_litellm_drop_connection(litellm, srv):
    import openai

    srv.responder = lambda req, attempt: Reply(drop_connection=True)
    exc = _acall_exc(litellm, srv, num_retries=0)
    assert type(exc) is litellm.InternalServerError  # NOT litellm.APIConnectionError
    assert not isinstance(exc, openai.APIConnectionError)
    assert exc.status_code == 500
    assert "Connection error" in str(exc)
    assert srv.count == 1

    srv.reset()
    _acall_exc(litellm, srv)
    assert srv.count == 3  # default: retried by the SDK


def test_litellm_timeout(litellm, srv):
    import openai

    srv.responder = lambda req, attempt: Reply(content="late", delay_s=40.0)
    start = time.perf_counter()
    exc = _acall_exc(litellm, srv, num_retries=0, timeout=0.3)
    assert time.perf_counter() - start < 30  # gave up long before the 40 s answer
    assert type(exc) is litellm.Timeout
    assert isinstance(exc, openai.APITimeoutError) and isinstance(exc, openai.APIConnectionError)
    assert exc.status_code == 408


def test_litellm_counts_attempts_and_own_retry_loop(litellm, srv):
    srv.responder = sequence(
        Reply(status=429, headers={"Retry-After": "0"}), Reply(status=500), "positive"
    )
    seen_attempts = []
    wrapped = srv.responder

    def spy(req, attempt):
        seen_attempts.append(attempt)
        return wrapped(req, attempt)

    srv.responder = spy

    async def labelled_with_retries():
        errors = []
        for _ in range(5):
            try:
                resp = await litellm.acompletion(
                    api_base=srv.base_url, messages=MESSAGES, num_retries=0, **litellm_params
                )
                return resp.choices[0].message.content, errors
            except (litellm.RateLimitError, litellm.InternalServerError) as exc:
                errors.append(type(exc).__name__)
        raise AssertionError("never succeeded")

    content, errors = asyncio.run(labelled_with_retries())
    assert content == "positive"
    assert errors == ["RateLimitError", "InternalServerError"]
    assert seen_attempts == [0, 1, 2]
    assert srv.count == 3 and srv.attempts_for(MESSAGES) == 3


def test_litellm_concurrent_and_latency(litellm, srv):
    srv.responder = keyword_labeler({"even": "A"}, "B")
    n = 200

    async def run():
        # warm up (the first call creates litellm's client)
        await litellm.acompletion(
            api_base=srv.base_url, messages=MESSAGES, num_retries=0, **litellm_params
        )
        t0 = time.perf_counter()
        for i in range(20):
            await litellm.acompletion(
                api_base=srv.base_url,
                messages=[{"role": "user", "content": f"seq {i}"}],
                num_retries=0,
                **litellm_params,
            )
        seq = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(
                litellm.acompletion(
                    api_base=srv.base_url,
                    messages=[
                        {"role": "user", "content": f"item {i} {'even' if i % 2 == 0 else 'odd'}"}
                    ],
                    num_retries=0,
                    **litellm_params,
                )
                for i in range(n)
            )
        )
        return seq, time.perf_counter() - t0, [r.choices[0].message.content for r in results]

    seq, par, labels = asyncio.run(run())
    print(
        f"\nlitellm latency: {seq * 1000:.1f} ms/call sequential; "
        f"{n} concurrent in {par:.2f}s ({n / par:.0f}/s)"
    )
    assert labels == ["A" if i % 2 == 0 else "B" for i in range(n)]
    assert srv.count == 1 + 20 + n  # latency figures belong in bench/, not in a test


def test_server_throughput_raw_aiohttp(srv):
    aiohttp = pytest.importorskip("aiohttp")
    n = 2000
    payload = json.dumps({"model": "fake-model", "messages": MESSAGES})

    async def run():
        sem = asyncio.Semaphore(64)
        async with aiohttp.ClientSession() as session:

            async def one():
                async with (
                    sem,
                    session.post(
                        srv.base_url + "/chat/completions",
                        data=payload,
                        headers={"Content-Type": "application/json"},
                    ) as resp,
                ):
                    assert resp.status == 200
                    await resp.read()

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    print(f"\nraw aiohttp client: {n} requests in {elapsed:.2f}s ({n / elapsed:.0f}/s)")
    assert srv.count == n  # its speed is a benchmark figure (bench/throughput.py), not a test
