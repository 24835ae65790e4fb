"""Running a coroutine to its end from synchronous code (core station), anywhere.

`asyncio.run` refuses to start when the thread already runs an event loop, which is where a
notebook's code runs (Jupyter's kernel keeps one). The Python API (`harness.evaluate`, ...)
must work there too: the coroutine then runs on a fresh loop in a worker thread, and the
calling cell waits for it (no nest_asyncio, no patching of the notebook's loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # the usual case: the CLI, a script
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prelabel") as pool:
        return pool.submit(asyncio.run, coro).result()


def call_off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, in a worker thread when this thread runs an event loop: code
    that runs its own loop (`prelabel label` does, to reuse connections across chunks)
    cannot start it under a notebook's."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prelabel") as pool:
        return pool.submit(fn, *args, **kwargs).result()
