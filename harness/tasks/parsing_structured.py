"""Parse station for structured answers: a set of labels, a ranking, one level per axis.

Never raises; every outcome is a value or a named failure. JSON anywhere in the output
(fenced, in prose, nested) wins. Otherwise the answer is read from the first of: a prefixed
line (`Labels: a, b`, `Ranking: B > A`; or the next paragraph when the line ends there), a
bullet or numbered list, the first paragraph (where "The labels are a and b" names it).
Later paragraphs are explanation and ignored. Broken JSON (truncated, trailing comma,
Python repr) is read as text; "invalid_json" only when that fails too.

Decisions callers must know:
- multilabel: "none", "[]", `{"labels": []}`, `{"labels": null}` are the empty set (a
  label named "none" wins). An unknown item fails the answer ("not_in_labels"), unless
  the output had no structure (JSON, prefix, list) and no item matched: "no_label_found".
- ranking: an item is the id it starts with, after an optional "Response"/"Candidate"
  ("B - most detailed" is B). "C < A < B" is read best-last. Ties are not permutations.
- rubric: unknown keys are ignored; a value may be `{"score": 4, "reason": ...}`.
  `axis_failures` ({} if every axis parsed) names failed axes with a parse_label failure
  or "missing" whenever axes were found; None if the output failed as a whole. On
  "missing_axes" the value is None; a partial success has a `detail` on the failed axes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from harness.tasks.parsing import (
    _EDGE_CHARS,
    _MAX_JSON_ATTEMPTS,
    _distinct_labels,
    _json_value_text,
    _match_normalised,
    _names,
    _normalise,
    _without_confidence,
    parse_label,
)

FAILURES = ("empty", "invalid_json", "not_in_labels", "no_label_found")
FAILURES += ("not_a_permutation", "missing_axes")  # ranking, rubric
AXIS_FAILURES = ("missing", "empty", "no_label_found", "ambiguous", "not_in_labels", "invalid_json")
MULTILABEL_KEYS = ("labels", "label", "tags", "categories", "answer")  # in priority order
RANKING_KEYS = ("ranking", "order", "ranked", "answer")
AXIS_VALUE_KEYS = ("score", "rating", "level", "label", "value", "grade")


@dataclass(frozen=True)
class ParsedStructured:
    """A set of labels, an order of candidates, or {axis: level}; or a named failure."""

    value: list[str] | dict[str, str | None] | None  # None on failure
    failure: str | None  # None on success, else one of FAILURES
    detail: str | None = None
    axis_failures: dict[str, str] | None = None  # rubric: axis -> one of AXIS_FAILURES


def _fail(reason: str, detail: str, axis_failures: dict[str, str] | None = None):
    return ParsedStructured(None, reason, detail, axis_failures)


# ----------------------------------------------------------------------------- JSON
_JSON_START = re.compile(r"[\[{]")
_JSON_ATTEMPT = re.compile(r'^\s*(?:```\s*json|[\[{])|[\[{]\s*"', re.IGNORECASE)


def _json_values(text: str) -> tuple[list[Any], str | None]:
    """Objects and arrays decoded at each "{" / "[" (nested ones too) in text order, and a
    decode error when the text looks like JSON but nothing decoded."""
    decoder, values, error = json.JSONDecoder(), [], None
    for attempt, m in enumerate(_JSON_START.finditer(text)):
        if attempt >= _MAX_JSON_ATTEMPTS:
            break
        try:
            values.append(decoder.raw_decode(text, m.start())[0])
        except (ValueError, RecursionError) as exc:
            error = error or str(exc)
    return values, error if not values and _JSON_ATTEMPT.search(text) else None


def _keyed(obj: dict[str, Any], keys: Sequence[str]) -> tuple[str, Any] | None:
    folded = {str(k).strip().casefold(): k for k in obj}
    return next(((folded[k], obj[folded[k]]) for k in keys if k in folded), None)


def _json_answer(values: list[Any], keys: Sequence[str]) -> tuple[str, Any] | None:
    """(where, value) of the first array, or object with one of `keys`."""
    for v in values:
        if isinstance(v, list):
            return "JSON list", v
        if isinstance(v, dict) and (hit := _keyed(v, keys)):
            return f"JSON {hit[0]!r}", hit[1]
    return None


# ----------------------------------------------------------------------------- text
_FENCE = re.compile(r"^\s*```")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\(?\d{1,3}[.)])\s+")
_HEAD = re.compile(r"\(|:|\s[-–—]\s|\bbecause\b")  # where an explanation starts
_SKIP = re.compile(r"^(?:and|then|finally|followed\s+by)\s+", re.IGNORECASE)


def _after(separators: str) -> str:
    """The end of a prefix: markdown, an optional "(...)", a separator, then the answer."""
    return r"(?:[\s*_\"']*\([^)\n]{0,60}\))?[\s*_\"']*[" + separators + r"]\s*(?P<rest>.*)$"


@lru_cache(maxsize=8)
def _prefixes(words: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    line = r"^[\s>#*_\-•{\"']*(?:final\s+)?(?:" + words + ")" + _after(r":=\-–—")
    sentence = (
        r"\b(?:the|my)\s+(?:final\s+)?(?:"
        + words
        + r")\s+(?:is|are|would\s+be)\b(?:\s+as\s+follows)?"
    )
    return re.compile(line, re.I), re.compile(sentence + r"[\s:]*(?P<rest>.*)$", re.I)


def _region(text: str, words: str) -> tuple[list[str], bool]:
    """The lines holding the answer, and whether they were marked as one (prefix, list)."""
    lines = [ln for ln in _without_confidence(text).splitlines() if not _FENCE.match(ln)]
    line_prefix, sentence = _prefixes(words)
    for i, line in enumerate(lines):
        if m := line_prefix.match(line):
            if m.group("rest").strip(_EDGE_CHARS) and not m.group("rest").rstrip().endswith(":"):
                return [m.group("rest")], True
            return _paragraph(lines[i + 1 :]), True
    bullets: list[str] = []
    for line in lines:
        if _BULLET.match(line):
            bullets.append(line)
        elif bullets and line.strip():
            break
    if bullets:
        return bullets, True
    paragraph = _paragraph(lines)
    for line in paragraph:
        if (m := sentence.search(line)) and not m.group("rest").rstrip().endswith(":"):
            return [m.group("rest")], True
    return paragraph, False


def _paragraph(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.strip():
            out.append(line)
        elif out:
            break
    return out


def _items(lines: list[str], split: Callable[[str], list[str]]) -> list[str]:
    """One item per bullet line, else the line split into items; blanks dropped."""
    items = []
    for line in lines:
        m = _BULLET.match(line)
        for item in [line[m.end() :]] if m else split(line):
            item = _SKIP.sub("", _BULLET.sub("", item.strip().strip("{}").strip()))
            if item.strip(_EDGE_CHARS + "{}"):
                items.append(item)
    return items


def _from_text(text, words, split, json_error, judge) -> ParsedStructured:
    """Judge the items of the answer region; "invalid_json" if that fails on broken JSON."""
    lines, marked = _region(text, words)
    items = _items(lines, split)
    parsed = judge(items, marked) if items else _fail("no_label_found", "no answer items found")
    if parsed.failure and json_error:
        return _fail("invalid_json", f"no JSON parsed ({json_error}); as text: {parsed.detail}")
    return parsed


def _head(item: str) -> str:
    m = _HEAD.search(item)
    return item[: m.start()].rstrip() if m and item[: m.start()].strip() else item


# ----------------------------------------------------------------------------- multilabel
_MULTI_WORDS = r"labels?|tags?|categories|category|topics?|classes|answer|output"
_AND = re.compile(r"((?<!\s)\s+(?:and|&)\s+)", re.IGNORECASE)
_EMPTY = re.compile(
    r"(?:none|nothing|n/?a|null|empty|no\s+(?:labels?|tags?|categories|topics?)"
    r"(?:\s+appl(?:y|ies))?|none\s+(?:apply|of\s+(?:the\s+)?(?:above|labels|them)))",
    re.IGNORECASE,
)


def _match_item(item: str, labels: tuple[str, ...]) -> list[str]:
    found = _match_normalised(item, labels)
    return found or (_match_normalised(_head(item), labels) if _head(item) != item else [])


def _split_labels(line: str, labels: tuple[str, ...]) -> list[str]:
    """Split at , ; and "and" / "&", keeping labels that contain them ("arts and culture")."""
    if _match_item(line, labels):
        return [line]
    items: list[str] = []
    for piece in re.split(r"[,;]", line):
        tokens = _AND.split(piece)  # part, separator, part, ...
        parts, i = (len(tokens) + 1) // 2, 0
        while i < parts:
            j = next(
                (j for j in range(min(parts, i + 8), i + 1, -1)
                 if _match_item("".join(tokens[2 * i : 2 * j - 1]), labels)),
                i + 1,
            )  # fmt: skip
            items.append("".join(tokens[2 * i : 2 * j - 1]))
            i = j
    return items


def _labels_of(items: list[Any], labels: tuple[str, ...], where: str, marked: bool):
    texts = [t if isinstance(t, str) else _json_value_text(t) for t in items]
    found, unknown = [], []
    for item, text in zip(items, texts, strict=True):
        match = _match_item(text, labels) if text is not None else []
        (found if len(match) == 1 else unknown).append(match[0] if len(match) == 1 else item)
    if len(items) == 1 and unknown and _EMPTY.fullmatch(_normalise(texts[0] or "")):
        return ParsedStructured([], None)
    if unknown:
        reason = "not_in_labels" if found or marked else "no_label_found"
        shown = ", ".join(repr(u) for u in unknown[:12])
        return _fail(reason, f"{where}: {shown} not one of {_names(labels)}")
    return ParsedStructured([lab for lab in labels if lab in found], None)


def parse_multilabel(text: str | None, labels: Sequence[str]) -> ParsedStructured:
    """The set of labels the output names, in the task's label order, deduplicated."""
    if not isinstance(text, str) or not text.strip():
        return _fail("empty", "the output is empty")
    labs = _distinct_labels(labels)
    values, json_error = _json_values(text)
    if answer := _json_answer(values, MULTILABEL_KEYS):
        where, value = answer
        if value is None or (isinstance(value, str) and not value.strip()):
            return ParsedStructured([], None)
        items = _split_labels(value, labs) if isinstance(value, str) else value
        return _labels_of(items if isinstance(items, list) else [items], labs, where, True)
    split = lambda line: _split_labels(line, labs)  # noqa: E731
    judge = lambda items, marked: _labels_of(items, labs, "text", marked)  # noqa: E731
    return _from_text(text, _MULTI_WORDS, split, json_error, judge)


# ----------------------------------------------------------------------------- ranking
_RANK_WORDS = r"ranking|rankings|order|ranked|answer|output|preference"
_RANK_SPLIT = re.compile(r"->|→|>>|>|≻|,|;|\bthen\b|\band\b|\bfollowed\s+by\b", re.IGNORECASE)
_ID_PREFIX = (
    r"^[\s*_`\"'“”‘’«»(\[]*(?:(?:response|candidate|option|answer|output|completion|summary"
    r"|model|assistant|translation|choice|item|system)(?:\s*#)?\s*|#\s*)?"
)


def _split_ranking(line: str) -> list[str]:
    if "<" in line and ">" not in line:
        return [p for p in reversed(line.split("<"))]
    return _RANK_SPLIT.split(line)


def _candidate(item: Any, candidates: tuple[str, ...]) -> str | None:
    """The candidate id an item starts with (longest wins), else None."""
    text = item if isinstance(item, str) else _json_value_text(item)
    if text is None:
        return None
    hits: dict[str, int] = {}
    for cand in candidates:
        body = r"\s+".join(re.escape(p) for p in cand.split())
        if m := re.match(_ID_PREFIX + f"(?:{body})(?!\\w)", text, re.IGNORECASE):
            hits[cand] = m.end()
    best = [c for c, end in hits.items() if end == max(hits.values())]
    return best[0] if len(best) == 1 else None


def _ranking_of(items: list[Any], cands: tuple[str, ...], where: str, marked: bool):
    ranked = [_candidate(item, cands) for item in items]
    unknown = [item for item, c in zip(items, ranked, strict=True) if c is None]
    if unknown and len(unknown) == len(items) and not marked:
        return _fail("no_label_found", f"no candidate of {_names(cands)} found")
    order = [c for c in ranked if c is not None]
    problems = [
        f"{name} {', '.join(repr(x) for x in xs[:12])}"
        for name, xs in (
            ("unknown", unknown),
            ("repeated", [c for c in dict.fromkeys(order) if order.count(c) > 1]),
            ("missing", [c for c in cands if c not in order]),
        )
        if xs
    ]
    if problems:
        return _fail("not_a_permutation", f"{where}: " + "; ".join(problems))
    return ParsedStructured(order, None)


def parse_ranking(text: str | None, candidates: Sequence[str]) -> ParsedStructured:
    """The candidates' ids best first; must be a permutation of all of them."""
    if not isinstance(text, str) or not text.strip():
        return _fail("empty", "the output is empty")
    cands = _distinct_labels(candidates)
    values, json_error = _json_values(text)
    if answer := _json_answer(values, RANKING_KEYS):
        where, value = answer
        items = _items([value], _split_ranking) if isinstance(value, str) else value
        return _ranking_of(items if isinstance(items, list) else [items], cands, where, True)
    judge = lambda items, marked: _ranking_of(items, cands, "text", marked)  # noqa: E731
    return _from_text(text, _RANK_WORDS, _split_ranking, json_error, judge)


# ----------------------------------------------------------------------------- rubric
def _axis_key(name: Any) -> str:
    return " ".join(p for p in re.split(r"[\s_\-]+", str(name).strip(" *_`\"'").casefold()) if p)


@lru_cache(maxsize=256)
def _axis_line(axis: str) -> re.Pattern[str] | None:
    words = [p for p in re.split(r"[\s_\-]+", axis) if p]
    if not words:
        return None
    name = r"[\s_\-]+".join(re.escape(w) for w in words)
    lead = r"^[\s>#*_\-•|\"']*(?:\d{1,3}[.)]\s*)?"
    suffix = r"(?!\w)(?:[\s_\-]+(?:score|rating|level))?" + _after(r":=|\-–—")
    return re.compile(f"{lead}(?:{name}){suffix}", re.IGNORECASE)


_OUT_OF = re.compile(r"(?<=\d)\s*(?:/|out\s+of)\s*\d+(?:\.\d+)?", re.IGNORECASE)


def _axis_level(value: Any, levels: Sequence[str]) -> tuple[str | None, str | None, str | None]:
    """(level, None, None) or (None, failure, detail) for one axis value."""
    if isinstance(value, dict) and (hit := _keyed(value, AXIS_VALUE_KEYS)):
        value = hit[1]
    if value is None:
        return None, "empty", "no value"
    text = _json_value_text(value)
    if text is None:
        return None, "not_in_labels", f"{value!r} is not one of {_names(list(levels))}"
    parsed = parse_label(_OUT_OF.sub("", text), levels)  # "4 out of 5" names only 4
    return parsed.label, parsed.failure, parsed.detail


def _rubric_json(values: list[Any], axes: Mapping[str, Sequence[str]]) -> dict[str, Any] | None:
    """{axis: raw value} from the first object with any axis key."""
    for obj in values:
        if isinstance(obj, dict):
            keys = {}
            for k in obj:
                keys.setdefault(_axis_key(k), k)
            found = {a: obj[keys[_axis_key(a)]] for a in axes if _axis_key(a) in keys}
            if found:
                return found
    return None


def _rubric_lines(text: str, axes: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """{axis: text} from `axis: level` lines; commas, semicolons and braces end a value."""
    lines = [ln for ln in text.splitlines() if not _FENCE.match(ln)]
    segments = [(i, seg) for i, ln in enumerate(lines) for seg in re.split(r"[,;{}]", ln)]
    found: dict[str, Any] = {}
    for axis in axes:
        pattern = _axis_line(str(axis))
        for i, segment in segments if pattern else []:
            if m := pattern.match(segment):
                rest = m.group("rest").strip().strip("|").strip()
                found[axis] = rest or next((ln for ln in lines[i + 1 :] if ln.strip()), "")
                break
    return found


def parse_rubric(text: str | None, axes: Mapping[str, Sequence[str]]) -> ParsedStructured:
    """{axis: level or None} for every axis; fails only if no axis parsed."""
    if not isinstance(text, str) or not text.strip():
        return _fail("empty", "the output is empty")
    values, json_error = _json_values(text)
    raw = _rubric_json(values, axes) or _rubric_lines(text, axes)
    if not raw:
        if json_error:
            return _fail("invalid_json", f"no JSON parsed ({json_error}); no axis lines found")
        return _fail("no_label_found", f"none of the axes {_names(list(axes))} found")
    value: dict[str, str | None] = {}
    failures: dict[str, str] = {}
    details: list[str] = []
    for axis, levels in axes.items():
        if axis not in raw:
            value[axis], failures[axis] = None, "missing"
            details.append(f"{axis}: missing")
            continue
        value[axis], failure, detail = _axis_level(raw[axis], levels)
        if failure:
            failures[axis] = failure
            details.append(f"{axis}: {failure} ({detail})")
    if all(v is None for v in value.values()):
        return _fail("missing_axes", "; ".join(details), failures)
    return ParsedStructured(value, None, "; ".join(details) or None, failures)
