"""Pins the label cache: JSON text on disk, replies round-trip, failures and junk never hit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from harness.core.records import ProviderReply, TokenLogprobRecord
from harness.run.cache import LabelCache

KEY = "a" * 64


def full_reply(content: str = '{"label": "positive"}') -> ProviderReply:
    return ProviderReply(
        content=content,
        token_logprobs=[
            TokenLogprobRecord("{", -0.01, (("{", -0.01), ("The", -4.6))),
            TokenLogprobRecord("positive", -0.2231, (("positive", -0.2231), ("neutral", -1.6094))),
            TokenLogprobRecord("}", 0.0, ()),
        ],
        input_tokens=42,
        output_tokens=7,
        cost_usd=0.000123,
        provider_model="gpt-4o-mini-2024-07-18",
        latency_s=0.51,
    )


@pytest.fixture
def cache(tmp_path):
    c = LabelCache(tmp_path / "cache")
    yield c
    c.close()


def stored_values(directory: Path) -> dict[str, str]:
    """key -> the stored text, read with sqlite and plain file reads, not with diskcache."""
    with sqlite3.connect(directory / "cache.db") as db:
        rows = db.execute("SELECT key, value, filename FROM Cache").fetchall()
    out = {}
    for key, value, filename in rows:
        out[key] = value if filename is None else (directory / filename).read_text("utf-8")
    return out


@pytest.mark.parametrize(
    "reply",
    [
        full_reply(),
        ProviderReply(content="positive"),  # every optional field None
        ProviderReply(content="négatif — ☹️ 😡", token_logprobs=[]),
        full_reply("x" * 100_000),  # large values live in a file beside the database
    ],
    ids=["full", "minimal", "unicode", "large"],
)
def test_round_trip(cache, reply):
    cache.set(KEY, reply)
    assert cache.contains(KEY)
    assert cache.get(KEY) == reply
    assert len(cache) == 1


def test_a_miss_is_none(cache):
    assert cache.get(KEY) is None
    assert not cache.contains(KEY)


@pytest.mark.parametrize("content", [None, "", "   ", "\n\t "])
def test_empty_replies_are_never_stored(cache, content):
    cache.set(KEY, ProviderReply(content=content, input_tokens=3, output_tokens=0))
    assert cache.get(KEY) is None
    assert not cache.contains(KEY)
    assert len(cache) == 0


@pytest.mark.parametrize(
    "junk",
    [
        "not json",
        '{"content": "positive"',  # truncated
        "[1, 2]",
        "null",
        '"positive"',
        "42",
        '{"content": null}',
        '{"content": ""}',
        '{"content": 5}',
        '{"content": "positive", "token_logprobs": [[1]]}',
        '{"content": "positive", "token_logprobs": 3}',
        b"\x80\x04\x95binary",
        12345,
    ],
)
def test_a_corrupted_entry_reads_as_a_miss_and_is_overwritten(tmp_path, junk):
    import diskcache

    directory = tmp_path / "cache"
    with diskcache.Cache(str(directory)) as raw:
        raw.set(KEY, junk)
    cache = LabelCache(directory)
    try:
        assert cache.get(KEY) is None
        cache.set(KEY, full_reply())
        assert cache.get(KEY) == full_reply()
    finally:
        cache.close()


def test_entries_survive_closing_and_reopening(tmp_path):
    first = LabelCache(tmp_path / "cache")
    first.set(KEY, full_reply())
    first.set("b" * 64, ProviderReply("negative"))
    first.close()
    second = LabelCache(tmp_path / "cache")
    try:
        assert second.get(KEY) == full_reply()
        assert second.get("b" * 64) == ProviderReply("negative")
        assert len(second) == 2
    finally:
        second.close()


def test_two_handles_on_one_directory_see_each_others_writes(tmp_path):
    writer, reader = LabelCache(tmp_path / "c"), LabelCache(tmp_path / "c")
    try:
        writer.set(KEY, full_reply())
        assert reader.get(KEY) == full_reply()
    finally:
        writer.close()
        reader.close()


@pytest.mark.parametrize("content", ["positive", "y" * 100_000], ids=["in_db", "in_file"])
def test_values_are_json_text_not_pickles(tmp_path, content):
    cache = LabelCache(tmp_path / "cache")
    reply = full_reply(content)
    cache.set(KEY, reply)
    cache.close()
    stored = stored_values(tmp_path / "cache")
    assert set(stored) == {KEY}
    text = stored[KEY]
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(json.dumps(reply.to_json()))
    assert text == json.dumps(reply.to_json(), sort_keys=True, ensure_ascii=False)


def test_clear_empties_the_cache(cache):
    cache.set(KEY, full_reply())
    cache.set("b" * 64, full_reply("negative"))
    assert cache.clear() == 2
    assert len(cache) == 0
    assert cache.get(KEY) is None


def test_the_directory_is_created(tmp_path):
    directory = tmp_path / "deep" / "er" / "cache"
    cache = LabelCache(directory)
    cache.close()
    assert (directory / "cache.db").is_file()
