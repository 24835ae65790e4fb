"""Share labels between machines: `prelabel cache export` and `prelabel cache import`.

A label made on one machine is worth having on another: a CI runner, a colleague, a fresh
clone that should reproduce a report exactly (a local model's labels depend on the CPU it
ran on). The export file is JSON lines, gzip-compressed when its name ends in `.gz`:

    {"prelabel_cache_export": 1, "entries": N, "created_at": "...", "prelabel_version": "..."}
    {"key": "<sha256>", "request": {...}, "reply": {...}}      # N lines

Each entry carries the request its key is the hash of (`plan.cache_request`), so the
importer recomputes every key instead of trusting the file: a label can only land under
the key of the request it answers. Replies are checked the way the runner reads them (a
non-empty answer). Import checks the whole file before writing anything, and merging is
safe: an entry the cache already holds with the same reply is skipped, one with another
reply is kept as it is (the label somebody paid for) unless `--replace` is given.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import Problem, UserError
from harness.core.files import write_bytes
from harness.core.records import ProviderReply
from harness.run.cache import LabelCache
from harness.run.cache_keys import cache_request, key_of, model_fingerprint
from harness.run.manifest import now_iso, package_versions
from harness.run.plan import Plan

FORMAT = 1
HEADER = "prelabel_cache_export"
KEY_CHARS = frozenset("0123456789abcdef")


@dataclass
class ExportResult:
    written: int = 0
    missing: int = 0  # calls of the configs that are not in the cache (not labelled yet)
    duplicates: int = 0  # calls that share a key with another (the same prompt twice)


@dataclass
class ImportResult:
    added: int = 0
    identical: int = 0
    replaced: int = 0
    kept: list[str] = field(default_factory=list)  # keys whose cached reply differs, kept


def export_labels(plans: Iterable[Plan], cache: LabelCache, path: Path) -> ExportResult:
    """Write the cached replies of every call the plans make, each with its request."""
    result = ExportResult()
    entries: dict[str, tuple[dict[str, Any], str]] = {}
    for plan in plans:
        models = plan.models
        fingerprints: dict[str, str | None] = {}
        for spec in plan.specs:
            if spec.cache_key in entries:
                result.duplicates += 1
                continue
            raw = cache.raw(spec.cache_key)
            if raw is None or cache.get(spec.cache_key) is None:
                result.missing += 1
                continue
            model = models[spec.model_id]
            if spec.model_id not in fingerprints:
                fingerprints[spec.model_id] = model_fingerprint(model, plan.resolved.base)
            request = cache_request(
                model,
                spec.messages,
                spec.params,
                spec.response_schema,
                spec.top_logprobs,
                spec.sample,
                fingerprints[spec.model_id],
            )
            if key_of(request) != spec.cache_key:  # a bug, never the user's input
                raise AssertionError(f"cache key of {spec.item_id} is not its request's hash")
            entries[spec.cache_key] = (request, raw)
    lines = [
        json.dumps(
            {
                HEADER: FORMAT,
                "entries": len(entries),
                "created_at": now_iso(),
                "prelabel_version": package_versions().get("prelabel", "unknown"),
            }
        )
    ]
    # Sorted by key: the same labels give the same file, whatever order they were made in.
    for key in sorted(entries):
        request, raw = entries[key]
        entry = {"key": key, "request": request, "reply": json.loads(raw)}
        lines.append(json.dumps(entry, sort_keys=True, ensure_ascii=False))
    _write(path, "\n".join(lines) + "\n")
    result.written = len(entries)
    return result


def _write(path: Path, text: str) -> None:
    """Atomically; a .gz file without a timestamp, so equal labels give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    write_bytes(path, data)


def read_export(path: Path) -> list[tuple[str, str]]:
    """Every (key, canonical reply JSON) of an export file, checked; UserError listing every
    bad line otherwise."""
    lines = list(_lines(path))
    if not lines:
        raise UserError.at(
            "empty file", file=path, hint="pass a file made by `prelabel cache export`"
        )
    problems: list[Problem] = []
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get(HEADER) is None:
        raise UserError.at(
            "not a prelabel cache export (no header line)",
            file=path,
            line=1,
            hint="pass a file made by `prelabel cache export`",
        )
    if header[HEADER] != FORMAT:
        raise UserError.at(
            f"export format {header[HEADER]!r} is not one this prelabel reads ({FORMAT})",
            file=path,
            line=1,
            hint="export again with this prelabel version",
        )
    out: list[tuple[str, str]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entry = _entry(line)
        except ValueError as exc:
            problems.append(Problem(str(exc), path, lineno))
            continue
        out.append(entry)
    expected = header.get("entries")
    if not problems and expected != len(out):
        problems.append(
            Problem(f"the header announces {expected} entries, the file has {len(out)}", path, 1)
        )
    if problems:
        raise UserError(problems, hint="the file was edited or truncated: export it again")
    return out


def _lines(path: Path) -> Iterator[str]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                yield from fh.read().splitlines()
        else:
            yield from path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError.at("no such file", file=path, hint="check the path") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # bad gzip, truncated, not text
        raise UserError.at(
            f"unreadable export: {exc}", file=path, hint="the file is damaged: export it again"
        ) from None


def _entry(line: str) -> tuple[str, str]:
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(entry, dict) or set(entry) != {"key", "request", "reply"}:
        raise ValueError("an entry has exactly the keys key, request and reply")
    key, request, reply = entry["key"], entry["request"], entry["reply"]
    if not (isinstance(key, str) and len(key) == 64 and set(key) <= KEY_CHARS):
        raise ValueError("key is not a sha256 hex digest")
    if not isinstance(request, dict) or key_of(request) != key:
        raise ValueError(f"key {key[:12]}... is not the hash of the request beside it")
    if not isinstance(reply, dict):
        raise ValueError("reply is not an object")
    content = reply.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ValueError("reply has no answer text (empty answers are never cached)")
    try:
        ProviderReply.from_json(reply)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"reply does not read as a provider reply: {exc}") from None
    return key, json.dumps(reply, sort_keys=True, ensure_ascii=False)


def import_labels(path: Path, cache: LabelCache, *, replace: bool = False) -> ImportResult:
    """Merge an export into the cache; nothing is written unless the whole file checks out."""
    entries = read_export(path)
    result = ImportResult()
    for key, text in entries:
        current = cache.raw(key)
        if current is None:
            cache.set_raw(key, text)
            result.added += 1
        elif _same(current, text):
            result.identical += 1
        elif replace:
            cache.set_raw(key, text)
            result.replaced += 1
        else:
            result.kept.append(key)
    return result


def _same(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False
