"""Reading JSONL input files (gold sets, few-shot pools, replay labels, items to label).

One JSON value a line; blank lines and lines starting with `#` (after leading blanks) are
skipped, so a file can say where it came from. Lines are split on "\\n" only (a "\\r" before it
is stripped with the other blanks). A line that is not JSON, or (when the caller asks for
objects) not a JSON object, becomes a `Problem` with its line number, and reading goes on: a
user fixes a file in one pass. A torn last line (a file cut off mid-line) is invalid JSON on its
own line like any other. The file's bytes are read by `read_text_file`: UTF-8 (a BOM is
dropped), every OS and encoding failure a UserError naming the file and, for bad UTF-8, the line.

Problems go into a list the caller owns, in line order, while the caller's loop runs: the
caller's own problems about a line (a missing `id`, a duplicate) land between them in line order
too, and a caller that stops early (too many problems) stops reading as well.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from harness.core.errors import Problem
from harness.core.paths import read_text_file

# How a line that is not JSON is described, after "invalid JSON: ":
# - "column": the decoder's message and column, `Expecting value (column 1)`; a line nested
#   too deeply for the decoder says `nested too deeply` (gold sets, few-shot pools);
# - "message": the decoder's message alone, `Expecting value` (replay files);
# - "python": the decoder's message alone, and for deep nesting Python's own RecursionError
#   message (items to label: what `prelabel label` has always said).
JsonDetail = Literal["column", "message", "python"]


def read_jsonl(
    path: Path,
    problems: list[Problem],
    *,
    text: str | None = None,
    what: str = "JSONL file",
    non_object: str | None = None,
    detail: JsonDetail = "column",
) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) of every line that holds one; every other line's problem is
    appended to `problems` as reading reaches it.

    `text`: the file's text when the caller has read it already (a gold set keeps its bytes
    for the content hash); else the file is read now, as `what` in any error about it.
    `non_object`: the problem for a line that holds JSON but not an object (such lines are
    then skipped); None yields every JSON value and leaves the check to the caller."""
    if text is None:
        _, text = read_text_file(path, what)
    return _lines(text, path, problems, non_object, detail)


def _lines(
    text: str, path: Path, problems: list[Problem], non_object: str | None, detail: JsonDetail
) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(io.StringIO(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            value = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append(Problem(f"invalid JSON: {_describe(exc, detail)}", path, lineno))
            continue
        if non_object is not None and not isinstance(value, dict):
            problems.append(Problem(non_object, path, lineno))
            continue
        yield lineno, value


def _describe(exc: Exception, detail: JsonDetail) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (column {exc.colno})" if detail == "column" else exc.msg
    return str(exc) if detail == "python" else "nested too deeply"
