"""The label cache: provider replies on disk, content-addressed, shared by every run.

Keyed by `plan.cache_key` (sha256 of canonical JSON of what determines the output). Values
are canonical JSON text, not pickles, so a cache is readable by any tool and safe to share
between CI jobs. Only replies are stored: an error or an empty answer is never cached, so a
rerun retries it. A reply that fails to parse was paid for and is stored: `run
--retry-failed` asks again, `cache clear --failed` removes it. diskcache commits each write
to SQLite at once, so a label survives a crash the moment it is stored, and two runs can
share one cache directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.records import ProviderReply


class LabelCache:
    def __init__(self, directory: Path):
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        # size_limit: labels are small; never evict a label somebody paid for.
        self._cache = diskcache.Cache(str(directory), size_limit=2**40, eviction_policy="none")
        # SQLite's memory map of the file (64 MB) and page cache (32 MB) by diskcache's
        # defaults fill as the cache grows and count in the process's memory: a run or a
        # labelled pool would grow by ~1 KB per label up to ~100 MB. The OS caches the file
        # anyway. This connection only: not stored in the cache's settings.
        self._cache.reset("sqlite_mmap_size", 0, update=False)
        self._cache.reset("sqlite_cache_size", 1024, update=False)
        self.directory = directory

    def get(self, key: str) -> ProviderReply | None:
        text = self._cache.get(key)
        if text is None:
            return None
        try:
            data = json.loads(text)
            content = data.get("content") if isinstance(data, dict) else None
            if not isinstance(content, str) or not content.strip():
                return None  # not a reply we would have stored
            return ProviderReply.from_json(data)
        except (ValueError, TypeError, KeyError):
            return None  # unreadable entry: treat as a miss and overwrite on success

    def contains(self, key: str) -> bool:
        return key in self._cache

    def set(self, key: str, reply: ProviderReply) -> None:
        if reply.content is None or not reply.content.strip():
            return
        self._cache.set(key, json.dumps(reply.to_json(), sort_keys=True, ensure_ascii=False))

    def raw(self, key: str) -> str | None:
        """The stored JSON text as it is (`prelabel cache export`)."""
        text = self._cache.get(key)
        return text if isinstance(text, str) else None

    def set_raw(self, key: str, text: str) -> None:
        """Store JSON text that the caller has checked (`prelabel cache import`)."""
        self._cache.set(key, text)

    def delete(self, key: str) -> bool:
        """Remove one reply (`cache clear --failed`); False if it was not there."""
        return bool(self._cache.delete(key))

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> int:
        return self._cache.clear()

    def close(self) -> None:
        self._cache.close()
