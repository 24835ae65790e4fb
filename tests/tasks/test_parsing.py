"""Pins the parse station: which rule turns which model output into which label or failure."""

from __future__ import annotations

import math
import random

import pytest

from harness.tasks.confidence import TokenLogprob, label_probabilities
from harness.tasks.parsing import FAILURES, METHODS, ParsedLabel, parse_label

SENTIMENT = ("positive", "negative", "neutral")
STARS = ("1", "2", "3", "4", "5")
OPTIONS = ("A", "B", "C", "D")
GRADED = ("very positive", "positive", "negative", "very negative")


@pytest.mark.parametrize(
    ("text", "labels", "label", "method"),
    [
        # exact and normalised
        ("positive", SENTIMENT, "positive", "exact"),
        ("Positive", SENTIMENT, "positive", "normalised"),
        ("  positive\n", SENTIMENT, "positive", "normalised"),
        ("Positive.", SENTIMENT, "positive", "normalised"),
        ("**positive**", SENTIMENT, "positive", "normalised"),
        ('"Negative"', SENTIMENT, "negative", "normalised"),
        ("`neutral`!", SENTIMENT, "neutral", "normalised"),
        ("(B)", OPTIONS, "B", "normalised"),
        ("Very  Positive!", GRADED, "very positive", "normalised"),
        ("positive.", ("Positive", "Negative"), "Positive", "normalised"),  # canonical name
        ("Positive\nConfidence: 0.8", SENTIMENT, "positive", "normalised"),
        # json
        ('{"label": "negative"}', SENTIMENT, "negative", "json"),
        ('```json\n{"label": "negative", "confidence": 0.9}\n```', SENTIMENT, "negative", "json"),
        ('Sure! {"label": " NEGATIVE "} Hope this helps.', SENTIMENT, "negative", "json"),
        ('{"answer": "neutral"}', SENTIMENT, "neutral", "json"),
        ('{"category": "neutral"}', SENTIMENT, "neutral", "json"),
        ('{"class": "neutral"}', SENTIMENT, "neutral", "json"),
        ('{"sentiment": "Neutral"}', SENTIMENT, "neutral", "json"),
        ('{"Label": "positive"}', SENTIMENT, "positive", "json"),
        ('{"reasoning": "sounds negative", "label": "positive"}', SENTIMENT, "positive", "json"),
        ('{"sentiment": "negative", "label": "positive"}', SENTIMENT, "positive", "json"),
        ('{"result": {"label": "neutral"}}', SENTIMENT, "neutral", "json"),
        ('{"label": 3}', STARS, "3", "json"),
        ('{"label": 3.0}', STARS, "3", "json"),
        ('{"label": "very positive"}', GRADED, "very positive", "json"),
        # prefixed
        ("Label: neutral\nReason: neither positive nor negative", SENTIMENT, "neutral", "prefixed"),
        ("Answer: positive", SENTIMENT, "positive", "prefixed"),
        ("Sentiment - negative", SENTIMENT, "negative", "prefixed"),
        ("The answer is negative.", SENTIMENT, "negative", "prefixed"),
        ("**Label:** Positive", SENTIMENT, "positive", "prefixed"),
        ("- Final answer: neutral", SENTIMENT, "neutral", "prefixed"),
        ("Answer:\n\nNeutral", SENTIMENT, "neutral", "prefixed"),
        ("The sentiment of this review is **Positive**.", SENTIMENT, "positive", "prefixed"),
        ("Sentiment: Positive (nothing negative here)", SENTIMENT, "positive", "prefixed"),
        ("Label: very positive, not negative", GRADED, "very positive", "prefixed"),
        ("I think the answer is B.", OPTIONS, "B", "prefixed"),
        ("Rating: 4/5", STARS, "4", "prefixed"),
        ("Label: positive\nThe label is positive.", SENTIMENT, "positive", "prefixed"),
        # mentioned
        ("This review is clearly negative.", SENTIMENT, "negative", "mentioned"),
        ("The reviewer sounds Very Positive overall", GRADED, "very positive", "mentioned"),
        ("I'd rate it 4/5 stars", STARS, "4", "mentioned"),
        ("On a scale of 1-5 this is a 2", STARS, "2", "mentioned"),
        ("a lovely film, so B", OPTIONS, "B", "mentioned"),
        ("It's a tie", ("A", "B", "tie"), "tie", "mentioned"),
        ("It looks spam-like to me", ("spam", "spam-like", "ham"), "spam-like", "mentioned"),
        ("The sentiment is not positive", SENTIMENT, "positive", "mentioned"),  # naive negation
        ('{"label": "positive"', SENTIMENT, "positive", "mentioned"),  # truncated JSON
        ('{"label": positive}', SENTIMENT, "positive", "mentioned"),  # invalid JSON
        ("{'label': 'positive'}", SENTIMENT, "positive", "mentioned"),  # Python dict repr
        ('{"reasoning": "short"} negative', SENTIMENT, "negative", "mentioned"),
    ],
)
def test_rule_that_matches(text, labels, label, method):
    parsed = parse_label(text, labels)
    assert (parsed.label, parsed.method, parsed.failure) == (label, method, None)
    assert parsed.detail is None


@pytest.mark.parametrize(
    ("text", "labels", "failure", "detail_part"),
    [
        (None, SENTIMENT, "empty", "empty"),
        ("", SENTIMENT, "empty", "empty"),
        ("  \n\t", SENTIMENT, "empty", "empty"),
        ("I cannot determine the sentiment.", SENTIMENT, "no_label_found", "'neutral'"),
        ("positively", SENTIMENT, "no_label_found", "none of"),
        ("I think it's positive, not negative", SENTIMENT, "ambiguous", "'positive', 'negative'"),
        ("Label: positive\nAnswer: negative", SENTIMENT, "ambiguous", "'positive', 'negative'"),
        ("The answer could be A or B", OPTIONS, "ambiguous", "'A', 'B'"),
        ("POSITIVE", ("Positive", "positive"), "ambiguous", "'Positive', 'positive'"),
        ('{"label": "pos"}', SENTIMENT, "not_in_labels", "'pos'"),
        ('{"label": "pos"} I mean positive', SENTIMENT, "not_in_labels", "'pos'"),
        ('{"label": null}', SENTIMENT, "not_in_labels", "None"),
        ('{"label": ["positive", "negative"]}', SENTIMENT, "not_in_labels", "'positive'"),
        ('{"label": "POSITIVE"}', ("Positive", "positive"), "ambiguous", "JSON"),
        ('```json\n{"label": "mixed",}\n```', SENTIMENT, "invalid_json", "no label mentioned"),
        ('{"label": "positive" "negative"}', SENTIMENT, "invalid_json", "'positive', 'negative'"),
        ("I rate it 10 out of 10", STARS, "no_label_found", "none of"),
        ("Score: 1.5", STARS, "no_label_found", "none of"),
        ("Answer: an apple", OPTIONS, "no_label_found", "'A'"),
        ("positive", (), "no_label_found", "none of"),
        ("positive", ("", "  "), "no_label_found", "none of"),
    ],
)
def test_failure(text, labels, failure, detail_part):
    parsed = parse_label(text, labels)
    assert (parsed.label, parsed.method, parsed.failure) == (None, None, failure)
    assert detail_part in parsed.detail


@pytest.mark.parametrize(
    ("text", "labels", "label", "method"),
    [
        ('{"label": "negative"}\nLabel: positive', SENTIMENT, "negative", "json"),
        ("positive", ("Positive", "positive"), "positive", "exact"),
        ("answer: yes", ("Answer: yes", "yes"), "Answer: yes", "normalised"),
        ("Label: neutral\nnot positive, not negative", SENTIMENT, "neutral", "prefixed"),
        ("very positive", ("positive", "very positive"), "very positive", "exact"),
    ],
)
def test_earlier_rule_wins(text, labels, label, method):
    parsed = parse_label(text, labels)
    assert (parsed.label, parsed.method) == (label, method)


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ('{"label": "positive", "confidence": 0.9}', 0.9),
        ('{"label": "positive", "confidence": 85}', 0.85),
        ('{"label": "positive", "confidence": "70%"}', 0.7),
        ('{"label": "positive", "Confidence": "0.6"}', 0.6),
        ('{"label": "positive", "confidence": "high"}', None),
        ('{"label": "positive", "confidence": 250}', None),
        ('{"label": "positive", "confidence": true}', None),
        ('{"label": "positive"}\nConfidence: 0.75', 0.75),
        ("positive\nConfidence: 0.8", 0.8),
        ("Label: positive\nConfidence: 80%", 0.8),
        ("positive\n**Confidence:** 95%", 0.95),
        ("positive (confidence 7/10)", 0.7),
        ("Confidence level: 85\nAnswer: positive", 0.85),
        ("I'm 90% sure it is positive", 0.9),
        ("positive\nConfidence: 1%", 0.01),
        ("positive", None),
        ("80% of the review is praise: positive", None),
        ("Confidence: 0.4", 0.4),  # reported even though no label was found
        ('{"output": "positive", "confidence": 0.9}', 0.9),  # no label key: read as text
    ],
)
def test_verbalized_confidence(text, confidence):
    parsed = parse_label(text, SENTIMENT)
    assert parsed.confidence == pytest.approx(confidence)


def test_confidence_numbers_are_not_label_mentions():
    parsed = parse_label("4\nConfidence: 1", STARS)
    assert (parsed.label, parsed.method, parsed.confidence) == ("4", "normalised", 1.0)


_FRAGMENTS = [
    "{",
    "}",
    '"label"',
    '"answer": ',
    ":",
    '"',
    "'",
    "positive",
    "Negative",
    "very positive",
    "```json",
    "```",
    "\n",
    " ",
    "Label:",
    "The answer is",
    "Confidence:",
    "80%",
    "0.9",
    "1",
    "-",
    "/",
    "A",
    "a",
    "**",
    "\\",
    "[",
    "]",
    "null",
    "1e999",
    "NaN",
    "é",
    "\u200b",
    "\x00",
    "\ud800",
    '{"a":' * 3000,
    "9" * 5000,
]
_LABEL_SETS = [SENTIMENT, STARS, OPTIONS, GRADED, ("?", "N/A", "Positive", "-1", "C++"), ()]


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(80)))
    return "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(12)))


def test_parse_label_never_raises_on_random_text():
    rng = random.Random(20240521)
    for _ in range(3000):
        labels = rng.choice(_LABEL_SETS)
        parsed = parse_label(_random_text(rng), labels)
        assert isinstance(parsed, ParsedLabel)
        if parsed.failure is None:
            assert parsed.label in labels and parsed.method in METHODS
        else:
            assert parsed.failure in FAILURES and parsed.label is None and parsed.detail
        assert parsed.confidence is None or 0 <= parsed.confidence <= 1


@pytest.mark.parametrize(
    "text",
    [
        "9" * 50_000,
        "confidence" + " " * 50_000,
        "*." * 25_000 + "positive",
        "{" * 50_000,
        "Answer:\n" * 10_000,
        "the answer " * 5_000,
        "1-" * 25_000,
    ],
    ids=["digits", "spaces", "decoration", "braces", "prefix lines", "sentences", "ranges"],
)
@pytest.mark.timeout(600)  # catastrophic backtracking only; speed figures belong in benchmarks
def test_parse_label_does_not_hang_on_long_runs(text):
    # Quadratic regex backtracking once took seconds on 5,000 digits; now milliseconds.
    for labels in (SENTIMENT, STARS, OPTIONS, GRADED):
        assert isinstance(parse_label(text, labels), ParsedLabel)


# --------------------------------------------------------------------------- label_probabilities


def step(token: str, p: float, *alternatives: tuple[str, float]) -> TokenLogprob:
    """A token generated with probability p, alternatives given as (token, probability)."""
    return TokenLogprob(token, math.log(p), tuple((t, math.log(q)) for t, q in alternatives))


def fixed(token: str) -> TokenLogprob:
    return step(token, 1.0, (token, 1.0))


JSON_OPEN = [fixed('{"'), fixed("label"), fixed('":'), fixed(' "')]

_PROBABILITY_CASES = {
    "plain": (
        [step("positive", 0.7, ("positive", 0.7), ("negative", 0.2), ("The", 0.1))],
        SENTIMENT,
        "positive",
        {"positive": 0.7 / 0.9, "negative": 0.2 / 0.9, "neutral": 0.0},
    ),
    "leading space and case": (
        [step(" Positive", 0.6, (" Positive", 0.6), (" negative", 0.3), (" neutral", 0.05))],
        SENTIMENT,
        "positive",
        {"positive": 0.6 / 0.95, "negative": 0.3 / 0.95, "neutral": 0.05 / 0.95},
    ),
    "json value": (
        [
            *JSON_OPEN,
            step("neg", 0.5, ("neg", 0.5), ("pos", 0.3), ("neutral", 0.1), ("}", 0.1)),
            fixed("ative"),
            fixed('"}'),
        ],
        SENTIMENT,
        "negative",
        {"positive": 0.3 / 0.9, "negative": 0.5 / 0.9, "neutral": 0.1 / 0.9},
    ),
    "json value, quote inside the label token": (
        [fixed('{"label":'), step(' "neutral', 0.8, (' "neutral', 0.8), (' "positive', 0.2))],
        SENTIMENT,
        "neutral",
        {"positive": 0.2, "negative": 0.0, "neutral": 0.8},
    ),
    "chosen=None reads the json value": (
        [*JSON_OPEN, step("negative", 0.6, ("negative", 0.6), ("positive", 0.4)), fixed('"}')],
        SENTIMENT,
        None,
        {"positive": 0.4, "negative": 0.6, "neutral": 0.0},
    ),
    "chosen=None reads the first word": (
        [fixed("\n"), step("positive", 0.9, ("positive", 0.9), ("negative", 0.1))],
        SENTIMENT,
        None,
        {"positive": 0.9, "negative": 0.1, "neutral": 0.0},
    ),
    "chosen label after a prefix": (
        [fixed("Label"), fixed(":"), step(" positive", 0.5, (" positive", 0.5), (" neutral", 0.5))],
        SENTIMENT,
        "positive",
        {"positive": 0.5, "negative": 0.0, "neutral": 0.5},
    ),
    "variants of one label add up": (
        [step("positive", 0.4, ("positive", 0.4), ("Positive", 0.3), ("negative", 0.3))],
        SENTIMENT,
        "positive",
        {"positive": 0.7, "negative": 0.3, "neutral": 0.0},
    ),
    "generated token missing from the top list": (
        [step("neutral", 0.1, ("positive", 0.6), ("negative", 0.3))],
        SENTIMENT,
        "neutral",
        {"positive": 0.6, "negative": 0.3, "neutral": 0.1},
    ),
    "shared prefix split along the generated path": (
        [
            step("very", 0.5, ("very", 0.5), ("Very", 0.2), ("positive", 0.3)),
            step(" positive", 0.75, (" positive", 0.75), (" negative", 0.25)),
        ],
        GRADED,
        "very positive",
        {"very positive": 0.525, "positive": 0.3, "negative": 0.0, "very negative": 0.175},
    ),
    "positive log-probabilities do not overflow": (
        [TokenLogprob("positive", 1000.0, (("positive", 1000.0), ("negative", -1.0)))],
        SENTIMENT,
        "positive",
        {"positive": 1 / (1 + math.exp(-1)), "negative": 1 - 1 / (1 + math.exp(-1)), "neutral": 0},
    ),
    "lower-case option letter": (
        [step("a", 0.6, ("a", 0.6), ("B", 0.4))],
        OPTIONS,
        "A",
        {"A": 0.6, "B": 0.4, "C": 0.0, "D": 0.0},
    ),
    "single letters do not take words": (
        [step("B", 0.5, ("B", 0.5), ("A", 0.2), ("Absolutely", 0.2), ("C)", 0.1))],
        OPTIONS,
        "B",
        {"A": 0.25, "B": 0.625, "C": 0.125, "D": 0.0},
    ),
}


@pytest.mark.parametrize(
    ("steps", "labels", "chosen", "expected"),
    list(_PROBABILITY_CASES.values()),
    ids=list(_PROBABILITY_CASES),
)
def test_label_probabilities(steps, labels, chosen, expected):
    probabilities = label_probabilities(steps, labels, chosen)
    assert probabilities == pytest.approx(expected)


_NO_PROBABILITY_CASES = {
    "no tokens": ([], SENTIMENT, "positive"),
    "chosen not among the labels": ([fixed("positive")], SENTIMENT, "mixed"),
    "chosen not in the output": ([step("negative", 0.9, ("positive", 0.1))], SENTIMENT, "positive"),
    "label starts inside a token": (
        [step('{"label":"pos', 0.9, ('{"label":"neg', 0.1)), fixed('itive"}')],
        SENTIMENT,
        "positive",
    ),
    "chosen is only the start of a word": (
        [step("positively", 0.5, ("positively", 0.5), ("negative", 0.5))],
        SENTIMENT,
        "positive",
    ),
    "no label has mass": ([step("Hmm", 0.9, ("Hmm", 0.9), ("Well", 0.1))], SENTIMENT, None),
    "shared prefix not generated": (
        [step("positive", 0.6, ("positive", 0.6), ("very", 0.3), ("negative", 0.1))],
        GRADED,
        "positive",
    ),
    "shared prefix at the end of the output": (
        [step("very", 0.9, ("very", 0.9), ("positive", 0.1))],
        GRADED,
        None,
    ),
    "labels equal up to case": ([fixed("a"), fixed(".")], ("a", "A"), "a"),
}


@pytest.mark.parametrize(
    ("steps", "labels", "chosen"),
    list(_NO_PROBABILITY_CASES.values()),
    ids=list(_NO_PROBABILITY_CASES),
)
def test_label_probabilities_unknown(steps, labels, chosen):
    assert label_probabilities(steps, labels, chosen) is None


def test_label_probabilities_never_raises_on_random_tokens():
    rng = random.Random(7)
    pieces = ["pos", "itive", "neg", "ative", "neutral", " ", '"', "{", "label", ":", "very", ""]
    logprobs = [0.0, -0.1, -2.5, -math.inf, math.nan, -50.0, 1000.0]
    for _ in range(2000):
        steps = [
            TokenLogprob(
                rng.choice(pieces),
                rng.choice(logprobs),
                tuple((rng.choice(pieces), rng.choice(logprobs)) for _ in range(rng.randrange(4))),
            )
            for _ in range(rng.randrange(6))
        ]
        labels = rng.choice([SENTIMENT, GRADED, OPTIONS])
        chosen = rng.choice([None, *labels])
        probabilities = label_probabilities(steps, labels, chosen)
        if probabilities is not None:
            assert set(probabilities) == set(labels)
            assert sum(probabilities.values()) == pytest.approx(1.0)
            assert all(0 <= p <= 1 for p in probabilities.values())
