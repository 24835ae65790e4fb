"""Confidence from log-probabilities: per-token log-probs -> a distribution over the labels.

The provider reports, at each output position, the chosen token and its top alternatives.
At the position where the label begins, the mass of each label is the summed probability
of the alternatives that start it (`positive` and ` Positive` are two ways to one label),
renormalised over the labels. With a grammar-constrained local model these are the
unconstrained model's probabilities, so renormalising over the allowed labels is the
intended estimate (see ../shared/docs/environment.md).

Limitation (pinned by tests): when labels share leading tokens ("very positive" / "very
negative") the shared mass can be split only along the generated path; if a shared token
that was not generated carries mass, the split is unknown and the result is None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from harness.core.records import TokenLogprobRecord
from harness.tasks.parsing import JSON_LABEL_KEYS, _distinct_labels, _label_pattern

# The records type is the one the providers produce and the cache stores.
TokenLogprob = TokenLogprobRecord

_MAX_SPLIT_DEPTH = 32  # tokens walked forward to tell apart labels sharing a prefix
_TOKEN_NOISE = " \t\r\n\"'`*_"  # what may precede a label inside its first token


_JSON_VALUE_START = re.compile(
    r'"\s*(?:' + "|".join(JSON_LABEL_KEYS) + r')\s*"\s*:\s*"?', re.IGNORECASE
)


def _label_offset(output: str, chosen: str | None) -> int | None:
    """Character offset where the label begins: the JSON label value, else the first word.

    With a chosen label, its first whole-word occurrence from there on ("Label: positive").
    """
    m = _JSON_VALUE_START.search(output)
    start = m.end() if m else 0
    while start < len(output) and output[start] in _TOKEN_NOISE:
        start += 1
    if chosen is None:
        return start if start < len(output) else None
    if output[start:].casefold().startswith(_spaced(chosen)):  # also "a" for option "A"
        return start
    found = re.compile(_label_pattern(chosen), re.IGNORECASE).search(output, start)
    return found.start() if found else None


def _token_at(tokens: Sequence[str], offset: int) -> int | None:
    """Index of the token holding `offset`, if the label starts that token (after noise)."""
    position = 0
    for i, token in enumerate(tokens):
        end = position + len(token)
        if position <= offset < end:
            return None if token[: offset - position].strip(_TOKEN_NOISE) else i
        position = end
    return None


def _token_key(token: str, depth: int) -> str:
    """A token compared with label text: the first token may carry a space or an opening quote."""
    return (token.lstrip(_TOKEN_NOISE) if depth == 0 else token.lstrip()).casefold()


def _fits(remainder: str, key: str) -> bool:
    """Can a token (key) continue a label whose unmatched text is `remainder`?

    A token longer than the label must end the label at a non-word character ("a)" fits
    "a", "absolutely" does not); an empty remainder means the label is complete.
    """
    if not remainder:
        return not key or not key[0].isalnum()
    if not key:
        return False
    if remainder.startswith(key):
        return True
    return key.startswith(remainder) and not key[len(remainder)].isalnum()


def _alternatives(step: TokenLogprob) -> list[tuple[str, float]]:
    """The top alternatives plus the generated token, each token once, finite log-probs only."""
    seen: dict[str, float] = {}
    for token, logprob in (*step.top, (step.token, step.logprob)):
        if token not in seen and math.isfinite(logprob):
            seen[token] = min(logprob, 0.0)  # a log-probability above 0 is rounding noise
    return list(seen.items())


def _label_mass(
    steps: Sequence[TokenLogprob], k: int, remainders: dict[str, str], depth: int = 0
) -> dict[str, float] | None:
    """Unnormalised probability of each label, from the alternatives at position k.

    Distinct tokens leading to the same label add up ("positive", " Positive"). A token
    shared by several labels is resolved one position further along the generated path.
    """
    if k >= len(steps) or depth > _MAX_SPLIT_DEPTH:
        return None
    path_key = _token_key(steps[k].token, depth)
    mass = dict.fromkeys(remainders, 0.0)
    split: dict[str, float] | None = None
    for token, logprob in _alternatives(steps[k]):
        key = _token_key(token, depth)
        if depth == 0 and not key:
            continue
        fits = [lab for lab, rem in remainders.items() if _fits(rem, key)]
        if len(fits) == 1:
            mass[fits[0]] += math.exp(logprob)
        elif fits:
            if key != path_key:
                return None  # a shared prefix that was not generated: its split is unknown
            if split is None:
                following = {lab: _advance(remainders[lab], key) for lab in fits}
                if len(set(following.values())) < len(following):
                    return None  # labels that no continuation can tell apart
                split = _label_mass(steps, k + 1, following, depth + 1)
                if split is None:
                    return None
            for lab, weight in split.items():
                mass[lab] += math.exp(logprob) * weight
    return mass


def _spaced(label: str) -> str:
    """Label text as compared with tokens: case-folded, single spaces, no outer whitespace."""
    return " ".join(label.split()).casefold()


def _advance(remainder: str, key: str) -> str:
    """The label text left after a token: "" when the token completed the label."""
    return remainder[len(key) :].lstrip() if remainder.startswith(key) else ""


def label_probabilities(
    token_logprobs: Sequence[TokenLogprob], labels: Sequence[str], chosen: str | None
) -> dict[str, float] | None:
    """P(label) over `labels`, renormalised, read at the token where the label begins.

    Labels absent from the alternatives get 0. Renormalising over the allowed labels is the
    intended estimate even for grammar-constrained outputs, whose reported log-probabilities
    are those of the unconstrained model. None when the position cannot be found (or does
    not start with `chosen`), a shared-prefix split is unknown, or no label has mass.
    """
    distinct = _distinct_labels(labels)
    if not token_logprobs or not distinct or (chosen is not None and chosen not in distinct):
        return None
    tokens = [step.token for step in token_logprobs]
    offset = _label_offset("".join(tokens), chosen)
    k = _token_at(tokens, offset) if offset is not None else None
    if k is None:
        return None
    if chosen is not None and not _fits(_spaced(chosen), _token_key(tokens[k], 0)):
        return None
    mass = _label_mass(token_logprobs, k, {lab: _spaced(lab) for lab in distinct})
    total = sum(mass.values()) if mass is not None else 0.0
    if mass is None or not math.isfinite(total) or total <= 0:
        return None
    return {lab: weight / total for lab, weight in mass.items()}
