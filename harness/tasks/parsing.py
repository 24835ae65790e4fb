"""Parse station: a model's raw output -> one label of the task, or a named failure.

Small chat models wrap their answer in JSON fences, markdown, prefixes and explanations.
`parse_label` applies a fixed ladder of rules and records which one matched, so parser
variants can be compared and parse failures counted (never dropped, never raised):

    json -> exact -> normalised -> prefixed -> mentioned

`harness.tasks.confidence.label_probabilities` turns per-token log-probabilities into a
distribution over the labels.

Known limitations (deliberately naive, pinned by tests):
- Negation is not understood: "not positive" mentions "positive". A "mentioned" label may
  be the opposite of what the model meant; prefer prompts that ask for JSON or `Label: x`.
- A bare label followed by an explanation that names other labels ("Positive\n\nIt is not
  negative") is "ambiguous": no rule prefers the first line.
- Single-letter alphabetic labels ("A".."D") are matched case-sensitively when merely
  mentioned, so the article "a" is not option A; a sentence starting "A good ..." still is.
- Labels without any letter or digit ("?", "-") are found only by the json, exact and
  normalised rules, never as a mention.
- Numeric labels are not matched inside numbers ("10", "1.5"), after "-", "+" or "/" ("-1",
  "4/5" mentions only 4), or before "-<digit>" ("1-5" is a range, not a mention).
- A verbalized confidence above 1 without "%" is read as a percentage ("Confidence: 5" ->
  0.05); a 1-5 confidence scale is not recognised unless written "5/5".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

FAILURES = ("empty", "no_label_found", "ambiguous", "not_in_labels", "invalid_json")
METHODS = ("json", "exact", "normalised", "prefixed", "mentioned")
JSON_LABEL_KEYS = ("label", "answer", "category", "class", "sentiment")  # in priority order

_MAX_JSON_ATTEMPTS = 64  # bounds the work on outputs full of "{"
_EDGE_CHARS = " \t\r\n*_`\"'“”‘’«»()[]"  # markdown, quotes and brackets around a bare label
_TRAILING_PUNCT = ".,;:!?"


@dataclass(frozen=True)
class ParsedLabel:
    """The parse of one output: a label and the rule that found it, or a named failure."""

    label: str | None  # a canonical label name from `labels`, or None on failure
    failure: str | None  # None on success, else one of FAILURES
    method: str | None  # which rule matched, one of METHODS
    confidence: float | None  # verbalized confidence in [0, 1] if the output carried one
    detail: str | None = None  # human-readable explanation of a failure


@dataclass(frozen=True)
class _LabelIndex:
    labels: tuple[str, ...]
    mention: re.Pattern[str] | None  # all mentionable labels, longest first


def _distinct_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Distinct labels in their given order; blank labels dropped since they match anything."""
    return tuple(dict.fromkeys(lab for lab in labels if isinstance(lab, str) and lab.strip()))


def _label_body(label: str) -> str:
    """Regex for the label's text: any run of whitespace may separate its words."""
    body = r"\s+".join(re.escape(part) for part in label.split())
    # The article "a" and pronoun "I" must not count as options A / I.
    return f"(?-i:{body})" if len(label) == 1 and label.isalpha() else body


def _label_pattern(label: str) -> str:
    """The label as a whole word; digit labels also stay out of numbers and ranges."""
    left, right = r"(?<!\w)", r"(?!\w)"
    label = label.strip()
    if label[0].isdigit():
        left += r"(?<!\d[.,])(?<![-+/–])"
    if label[-1].isdigit():
        right += r"(?![.,]\d)(?![-–]\d)"
    return f"{left}(?:{_label_body(label)}){right}"


@lru_cache(maxsize=256)
def _index(labels: tuple[str, ...]) -> _LabelIndex:
    mentionable = sorted(
        (lab for lab in labels if any(ch.isalnum() for ch in lab)), key=len, reverse=True
    )
    pattern = "|".join(_label_pattern(lab) for lab in mentionable)
    return _LabelIndex(labels, re.compile(pattern, re.IGNORECASE) if pattern else None)


def _labels_for_match(matched: str, labels: tuple[str, ...]) -> list[str]:
    """Which labels a matched span is; labels differing only in case tie unless one is exact."""
    fits = [
        lab for lab in labels if re.fullmatch(_label_body(lab), matched, re.IGNORECASE | re.UNICODE)
    ]
    exact = [lab for lab in fits if lab == " ".join(matched.split())]
    return exact if len(exact) == 1 else fits


def _normalise(text: str) -> str:
    """Case-folded text without surrounding markdown, quotes, brackets, trailing punctuation."""
    text = text.lstrip(_EDGE_CHARS).rstrip(_EDGE_CHARS + _TRAILING_PUNCT)
    return " ".join(text.split()).casefold()


def _match_normalised(value: str, labels: tuple[str, ...]) -> list[str]:
    """Labels equal to `value` up to case, whitespace and decoration (exact match wins)."""
    if value.strip() in labels:
        return [value.strip()]
    key = _normalise(value)
    return [lab for lab in labels if key and _normalise(lab) == key]


_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_CONFIDENCE_STATEMENTS = (
    re.compile(
        r"\bconfidence(?:\s+(?:level|score))?[\s*_\"']*(?:(?:[:=\-–(]|is|of)[\s*_(]*)?"
        + _NUMBER
        + r"(?:\s*(%)|\s*/\s*(100|10|5|1)\b)?",
        re.IGNORECASE,
    ),
    # The lookbehind starts a match only at the first digit: linear time on long numbers.
    re.compile(
        r"(?<![\d.])" + _NUMBER + r"\s*(%)()\s*(?:confident|sure|certain|confidence)\b",
        re.IGNORECASE,
    ),
)
_CONFIDENCE_VALUE = re.compile(r"\s*" + _NUMBER + r"\s*(%)?\s*")


def _scale_confidence(value: float, percent: bool, denominator: float | None) -> float | None:
    """Map 0-1, 0-100, "80%" or "8/10" onto [0, 1]; None when out of range."""
    if denominator:
        value /= denominator
    elif percent or value > 1:
        value /= 100
    return value if math.isfinite(value) and 0 <= value <= 1 else None


def _text_confidence(text: str) -> float | None:
    for pattern in _CONFIDENCE_STATEMENTS:
        for m in pattern.finditer(text):
            denominator = float(m.group(3)) if m.group(3) else None
            scaled = _scale_confidence(float(m.group(1)), bool(m.group(2)), denominator)
            if scaled is not None:
                return scaled
    return None


def _json_confidence(obj: dict[str, Any]) -> float | None:
    value = next((v for k, v in obj.items() if k.strip().casefold() == "confidence"), None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _scale_confidence(float(value), False, None)
    if isinstance(value, str) and (m := _CONFIDENCE_VALUE.fullmatch(value)):
        return _scale_confidence(float(m.group(1)), bool(m.group(2)), None)
    return None


def _without_confidence(text: str) -> str:
    """The text minus confidence statements, whose numbers are not label mentions."""
    for pattern in _CONFIDENCE_STATEMENTS:
        text = pattern.sub(" ", text)
    return text


_JSON_ATTEMPT = re.compile(r'^\s*(?:```\s*json|\{)|\{\s*"', re.IGNORECASE)


def _label_key(obj: dict[str, Any]) -> str | None:
    keys = {k.strip().casefold(): k for k in obj}
    return next((keys[k] for k in JSON_LABEL_KEYS if k in keys), None)


def _find_label_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """First JSON object (at any "{", so fences and prose are skipped) with a label key.

    Also returns the first decode error when the text looks like an attempt at JSON and
    no object at all parsed, so that can be reported instead of "no_label_found".
    """
    decoder = json.JSONDecoder()
    parsed_any, error = False, None
    start = text.find("{")
    for _ in range(_MAX_JSON_ATTEMPTS):
        if start < 0:
            break
        try:
            obj, _end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            error = error or str(exc)
        else:
            if isinstance(obj, dict):
                parsed_any = True
                if _label_key(obj) is not None:
                    return obj, None
        start = text.find("{", start + 1)
    looks_like_json = _JSON_ATTEMPT.search(text) is not None
    return None, error if looks_like_json and not parsed_any else None


def _json_value_text(value: Any) -> str | None:
    """A JSON label value as text: numbers as written ("3", not "3.0"); None for containers."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (str, int, float)):  # bool is an int: "true"
        return value if isinstance(value, str) else json.dumps(value)
    return None


def _from_json(obj: dict[str, Any], labels: tuple[str, ...], conf: float | None) -> ParsedLabel:
    key = _label_key(obj)
    value = obj[key] if key is not None else None
    text = _json_value_text(value)
    found = _match_normalised(text, labels) if text is not None else []
    if len(found) == 1:
        return ParsedLabel(found[0], None, "json", conf)
    if found:
        return _failure("ambiguous", conf, f"JSON {key!r} value {value!r} matches {_names(found)}")
    return _failure(
        "not_in_labels", conf, f"JSON {key!r} value {value!r} is not one of {_names(labels)}"
    )


_PREFIX_WORD = (
    r"(?:final\s+)?(?:label|answer|sentiment|category|class|classification|prediction"
    r"|output|verdict|rating)"
)
_PREFIX_LINE = re.compile(
    r"^[\s>#*_\-•]*" + _PREFIX_WORD + r"[\s*_]*[:=\-–—][\s*_]*(?P<rest>.*)$", re.IGNORECASE
)
_PREFIX_SENTENCE = re.compile(
    r"\b(?:the|my)\s+" + _PREFIX_WORD + r"(?:\s+(?:of|for)\s+[^\n:]{1,60}?)?"
    r"\s+(?:is|would\s+be|should\s+be)\b[\s:]*(?P<rest>.*)$",
    re.IGNORECASE,
)


def _label_at_start(rest: str, index: _LabelIndex) -> list[str]:
    """The label that `rest` is, or starts with ("positive (the reviewer ...)")."""
    found = _match_normalised(rest, index.labels)
    if found or index.mention is None:
        return found
    m = index.mention.match(rest.lstrip(_EDGE_CHARS))
    return _labels_for_match(m.group(0), index.labels) if m else []


def _prefixed(text: str, index: _LabelIndex) -> list[str]:
    """Distinct labels named after `Label:`-style prefixes, one per prefixed line."""
    lines = text.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        for m in filter(None, (_PREFIX_LINE.match(line), _PREFIX_SENTENCE.search(line))):
            rest = m.group("rest")
            if not rest.strip(_EDGE_CHARS):  # "Answer:\nPositive"
                rest = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), "")
            labels = _label_at_start(rest, index)
            if len(labels) == 1:
                found.extend(labels if labels[0] not in found else [])
                break
    return found


def _mentioned(text: str, index: _LabelIndex) -> list[str]:
    """Distinct labels appearing as whole words, longest label first at each position."""
    if index.mention is None:
        return []
    found: list[str] = []
    for m in index.mention.finditer(text):
        for label in _labels_for_match(m.group(0), index.labels):
            if label not in found:
                found.append(label)
    return found


def _names(labels: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(lab) for lab in labels[:limit])
    return shown + (f", ... ({len(labels)} labels)" if len(labels) > limit else "")


def _failure(reason: str, confidence: float | None, detail: str) -> ParsedLabel:
    return ParsedLabel(None, reason, None, confidence, detail)


def parse_label(text: str | None, labels: Sequence[str]) -> ParsedLabel:
    """The first rule that yields exactly one label wins; every other outcome is a failure.

    Rules: json (first object with a label/answer/category/class/sentiment key), exact,
    normalised (case, whitespace, quotes, markdown, trailing punctuation), prefixed
    (`Label: x`, `The answer is x`), mentioned (exactly one label as a whole word).
    Confidence is reported whenever the output carried one, even on failure.
    """
    if not isinstance(text, str) or not text.strip():
        return _failure("empty", None, "the output is empty")
    index = _index(_distinct_labels(labels))
    obj, json_error = _find_label_object(text)
    confidence = _json_confidence(obj) if obj is not None else None
    if confidence is None:
        confidence = _text_confidence(text)
    if obj is not None:
        return _from_json(obj, index.labels, confidence)
    if text in index.labels:
        return ParsedLabel(text, None, "exact", confidence)
    body = _without_confidence(text)
    if len(found := _match_normalised(body, index.labels)) == 1:
        return ParsedLabel(found[0], None, "normalised", confidence)
    if len(found := _prefixed(body, index)) == 1:
        return ParsedLabel(found[0], None, "prefixed", confidence)
    mentioned = _mentioned(body, index)
    if len(mentioned) == 1:
        return ParsedLabel(mentioned[0], None, "mentioned", confidence)
    seen = f"labels mentioned: {_names(mentioned)}" if mentioned else "no label mentioned"
    if json_error is not None:
        return _failure("invalid_json", confidence, f"no JSON object parsed ({json_error}); {seen}")
    if mentioned:
        return _failure("ambiguous", confidence, seen)
    return _failure("no_label_found", confidence, f"none of {_names(index.labels)} found")
