"""Pins the structured parsers: which model output becomes which label set, ranking or
rubric, and which becomes which named failure."""

from __future__ import annotations

import random

import pytest

from harness.tasks.parsing_structured import (
    AXIS_FAILURES,
    FAILURES,
    ParsedStructured,
    parse_multilabel,
    parse_ranking,
    parse_rubric,
)

TOPICS = ("sports", "politics", "business", "science and tech", "entertainment")
ABC = ("A", "B", "C")
STARS = ("1", "2", "3", "4", "5")
AXES = {"helpfulness": STARS, "harmlessness": STARS, "factual_accuracy": ("low", "medium", "high")}

# ----------------------------------------------------------------------------- multilabel


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        # JSON
        ('["sports", "politics"]', TOPICS, ["sports", "politics"]),
        ('["politics", "sports"]', TOPICS, ["sports", "politics"]),  # the task's label order
        ('```json\n{"labels": ["Politics", "SPORTS"]}\n```', TOPICS, ["sports", "politics"]),
        ('{"reasoning": "a match report", "tags": ["business"]}', TOPICS, ["business"]),
        ('{"label": "sports"}', TOPICS, ["sports"]),
        ('{"categories": "sports, business"}', TOPICS, ["sports", "business"]),
        ('{"Labels": ["**Sports**", "politics."]}', TOPICS, ["sports", "politics"]),
        ('{"result": {"labels": ["entertainment"]}}', TOPICS, ["entertainment"]),
        ('Sure! Here you go: ["business"] Hope this helps.', TOPICS, ["business"]),
        ("[1, 3]", ("1", "2", "3"), ["1", "3"]),
        ('["sports", "sports", "SPORTS"]', TOPICS, ["sports"]),
        # the empty set
        ("[]", TOPICS, []),
        ('{"labels": []}', TOPICS, []),
        ('{"labels": null}', TOPICS, []),
        ('{"labels": ""}', TOPICS, []),
        ('{"labels": "none"}', TOPICS, []),
        ("none", TOPICS, []),
        ("None.", TOPICS, []),
        ("Labels: none", TOPICS, []),
        ("No labels apply.", TOPICS, []),
        ("None of the above", TOPICS, []),
        ("N/A", TOPICS, []),
        ("none", ("spam", "none"), ["none"]),  # a label named "none" is a label
        # text
        ("sports, politics", TOPICS, ["sports", "politics"]),
        ("Sports; Politics.", TOPICS, ["sports", "politics"]),
        ("sports and politics", TOPICS, ["sports", "politics"]),
        ("Sports, politics, and business", TOPICS, ["sports", "politics", "business"]),
        ("sports & business", TOPICS, ["sports", "business"]),
        ("science and tech", TOPICS, ["science and tech"]),
        ("sports, science and tech and business", TOPICS,
         ["sports", "business", "science and tech"]),
        ("sports\npolitics", TOPICS, ["sports", "politics"]),
        ("- sports\n- business", TOPICS, ["sports", "business"]),
        ("1. Sports\n2. Politics", TOPICS, ["sports", "politics"]),
        ("- sports: the article is about football\n- politics (an election)", TOPICS,
         ["sports", "politics"]),
        ("Here are the labels:\n\n* sports\n* politics\n\nThe article covers a match and a vote.",
         TOPICS, ["sports", "politics"]),
        ("Labels: sports, politics\nExplanation: it covers football and an election.", TOPICS,
         ["sports", "politics"]),
        ("**Labels:** Sports, Politics", TOPICS, ["sports", "politics"]),
        ("Categories:\n- business\n- entertainment", TOPICS, ["business", "entertainment"]),
        ("The labels are sports and politics.", TOPICS, ["sports", "politics"]),
        ("sports, business\n\nThe article is about a football club's finances.", TOPICS,
         ["sports", "business"]),
        ("sports\nConfidence: 0.9", TOPICS, ["sports"]),
        ("`sports`, \"politics\"", TOPICS, ["sports", "politics"]),
        # broken JSON read as text
        ('["sports", "politics"', TOPICS, ["sports", "politics"]),
        ('{"labels": ["sports", "politics"],}', TOPICS, ["sports", "politics"]),
        ("{'labels': ['sports']}", TOPICS, ["sports"]),
    ],
)  # fmt: skip
def test_multilabel(text, labels, expected):
    assert parse_multilabel(text, labels) == ParsedStructured(expected, None)


@pytest.mark.parametrize(
    ("text", "labels", "failure", "detail_part"),
    [
        (None, TOPICS, "empty", "empty"),
        ("", TOPICS, "empty", "empty"),
        (" \n\t", TOPICS, "empty", "empty"),
        ("sports, cooking", TOPICS, "not_in_labels", "'cooking'"),
        ('["sports", "cooking"]', TOPICS, "not_in_labels", "'cooking'"),
        ('{"labels": ["sports", 3]}', TOPICS, "not_in_labels", "3"),
        ('{"labels": ["sports", {"label": "politics"}]}', TOPICS, "not_in_labels", "politics"),
        ('{"labels": {"sports": true}}', TOPICS, "not_in_labels", "'sports': True"),
        ("Labels: cooking", TOPICS, "not_in_labels", "'cooking'"),
        ("- sports\n- cooking", TOPICS, "not_in_labels", "'cooking'"),
        ("sports or politics", TOPICS, "no_label_found", "'sports or politics'"),
        ("cooking", TOPICS, "no_label_found", "'cooking'"),
        ("I cannot tell what this article is about.", TOPICS, "no_label_found", "cannot tell"),
        ("Labels:", TOPICS, "no_label_found", "no answer items"),
        ("```\n```", TOPICS, "no_label_found", "no answer items"),
        ("SPORTS", ("Sports", "sports"), "no_label_found", "'SPORTS'"),  # equal up to case
        ('```json\n{"tags" [cooking]}\n```', TOPICS, "invalid_json", "'\"tags\" [cooking]'"),
    ],
)
def test_multilabel_failure(text, labels, failure, detail_part):
    parsed = parse_multilabel(text, labels)
    assert (parsed.value, parsed.failure, parsed.axis_failures) == (None, failure, None)
    assert detail_part in parsed.detail


# ----------------------------------------------------------------------------- ranking


@pytest.mark.parametrize(
    ("text", "candidates", "expected"),
    [
        ('["B", "A", "C"]', ABC, ["B", "A", "C"]),
        ('```json\n["B","A","C"]\n```', ABC, ["B", "A", "C"]),
        ('{"ranking": ["b", "a", "c"]}', ABC, ["B", "A", "C"]),
        ('{"reasoning": "B is fuller", "order": "B > C > A"}', ABC, ["B", "C", "A"]),
        ('{"ranking": ["Response C", "Response A", "Response B"]}', ABC, ["C", "A", "B"]),
        ("B > A > C", ABC, ["B", "A", "C"]),
        ("b>a>c", ABC, ["B", "A", "C"]),
        ("Ranking: B > A > C", ABC, ["B", "A", "C"]),
        ("**Final ranking:** B ≻ C ≻ A", ABC, ["B", "C", "A"]),
        ("Response B > Response A > Response C", ABC, ["B", "A", "C"]),
        ("B -> A -> C", ABC, ["B", "A", "C"]),
        ("C < A < B", ABC, ["B", "A", "C"]),
        ("B, A, C", ABC, ["B", "A", "C"]),
        ("B, then A, then C", ABC, ["B", "A", "C"]),
        ("(B), (A), (C)", ABC, ["B", "A", "C"]),
        ("1. B\n2. A\n3. C", ABC, ["B", "A", "C"]),
        ("1. Response B\n2. Response A\n3. Response C", ABC, ["B", "A", "C"]),
        ("Here is my ranking:\n1. B - most detailed\n2. A (accurate but short)\n3. C: off-topic"
         "\n\nB wins because it covers every step.", ABC, ["B", "A", "C"]),
        ("Ranking (best to worst):\n\n1) C\n2) B\n3) A", ABC, ["C", "B", "A"]),
        ("The ranking is as follows: B, A, C", ABC, ["B", "A", "C"]),
        ("Response B is the best, followed by Response A and finally Response C.", ABC,
         ["B", "A", "C"]),
        ("B > A > C\n\nB is the most complete answer; C is off-topic.", ABC, ["B", "A", "C"]),
        ("[2, 1, 3]", ("1", "2", "3"), ["2", "1", "3"]),
        ("Candidate 2 > Candidate 3 > Candidate 1", ("1", "2", "3"), ["2", "3", "1"]),
        ("1. 3\n2. 1\n3. 2", ("1", "2", "3"), ["3", "1", "2"]),
        ("Llama > GPT > mistral", ("gpt", "llama", "Mistral"), ["llama", "gpt", "Mistral"]),
        ("A1 > A", ("A", "A1"), ["A1", "A"]),  # the longest id wins
        ('["B", "A", "C"', ABC, ["B", "A", "C"]),  # truncated JSON read as text
    ],
)  # fmt: skip
def test_ranking(text, candidates, expected):
    assert parse_ranking(text, candidates) == ParsedStructured(expected, None)


@pytest.mark.parametrize(
    ("text", "failure", "detail_part"),
    [
        (None, "empty", "empty"),
        ("   ", "empty", "empty"),
        ("B > A", "not_a_permutation", "missing 'C'"),
        ("B > A > B", "not_a_permutation", "repeated 'B'; missing 'C'"),
        ("B > A > D > C", "not_a_permutation", "unknown 'D'"),
        ('["B", "A", "C", "C"]', "not_a_permutation", "repeated 'C'"),
        ('{"ranking": ["B", "A"]}', "not_a_permutation", "JSON 'ranking': missing 'C'"),
        ('{"ranking": ["B", "A", null]}', "not_a_permutation", "unknown None"),
        ("A = B > C", "not_a_permutation", "missing 'B'"),  # a tie
        ("Ranking: D > E > F", "not_a_permutation", "unknown 'D', 'E', 'F'"),
        ("I think both are fine.", "no_label_found", "'A', 'B', 'C'"),
        ('```json\n{"ranking" [B, A]}\n```', "invalid_json", "missing"),
    ],
)
def test_ranking_failure(text, failure, detail_part):
    parsed = parse_ranking(text, ABC)
    assert (parsed.value, parsed.failure, parsed.axis_failures) == (None, failure, None)
    assert detail_part in parsed.detail


# ----------------------------------------------------------------------------- rubric

ALL = {"helpfulness": "4", "harmlessness": "5", "factual_accuracy": "high"}


@pytest.mark.parametrize(
    "text",
    [
        '{"helpfulness": 4, "harmlessness": "5", "factual_accuracy": "high"}',
        '{"Helpfulness": 4.0, "HARMLESSNESS": "**5**", "factual accuracy": "High"}',
        '```json\n{"helpfulness": "4", "harmlessness": 5, "Factual-Accuracy": "high."}\n```',
        'Here is my evaluation:\n{"helpfulness": 4, "harmlessness": 5, "factual_accuracy": '
        '"high"}\nLet me know if you need more.',
        '{"scores": {"helpfulness": 4, "harmlessness": 5, "factual_accuracy": "high"}}',
        '{"helpfulness": {"score": 4, "reason": "clear"}, "harmlessness": {"rating": "5"}, '
        '"factual_accuracy": {"level": "high"}}',
        '{"helpfulness": "4/5", "harmlessness": "5 out of 5", "factual_accuracy": "High."}',
        '{"reasoning": "fine", "helpfulness": 4, "harmlessness": 5, "factual_accuracy": "high", '
        '"overall": 2}',
        "Helpfulness: 4\nHarmlessness: 5/5\nFactual accuracy: high",
        "**Helpfulness**: 4 - mostly helpful\n**Harmlessness:** 5\n- Factual Accuracy: High",
        "1. Helpfulness: 4\n2. Harmlessness: 5\n3. Factual_accuracy: high",
        "Helpfulness score (1-5): 4\nHarmlessness score: 5\nFactual accuracy (low/medium/high):"
        " high",
        "| Axis | Score |\n|---|---|\n| Helpfulness | 4 |\n| Harmlessness | 5 |\n"
        "| Factual accuracy | high |",
        "Helpfulness:\n4\nHarmlessness:\n5\nFactual accuracy:\nhigh",
        '```json\n{"helpfulness": 4, "harmlessness": 5, "factual_accuracy": "high",}\n```',
    ],
)
def test_rubric(text):
    assert parse_rubric(text, AXES) == ParsedStructured(ALL, None, None, {})


@pytest.mark.parametrize(
    ("text", "value", "axis_failures"),
    [
        (
            '{"helpfulness": 4, "harmlessness": 9}',
            {"helpfulness": "4", "harmlessness": None, "factual_accuracy": None},
            {"harmlessness": "no_label_found", "factual_accuracy": "missing"},
        ),
        (
            '{"helpfulness": "4", "harmlessness": null, "factual_accuracy": ["high"]}',
            {"helpfulness": "4", "harmlessness": None, "factual_accuracy": None},
            {"harmlessness": "empty", "factual_accuracy": "not_in_labels"},
        ),
        (
            '{"helpfulness": "4 or 5", "harmlessness": 5, "factual_accuracy": "very high"}',
            {"helpfulness": None, "harmlessness": "5", "factual_accuracy": "high"},
            {"helpfulness": "ambiguous"},
        ),
        (
            "Helpfulness: 4 out of 5\nFactual accuracy: great",
            {"helpfulness": "4", "harmlessness": None, "factual_accuracy": None},
            {"harmlessness": "missing", "factual_accuracy": "no_label_found"},
        ),
    ],
)
def test_rubric_partial(text, value, axis_failures):
    parsed = parse_rubric(text, AXES)
    assert (parsed.value, parsed.failure, parsed.axis_failures) == (value, None, axis_failures)
    for axis, failure in axis_failures.items():
        assert f"{axis}: {failure}" in parsed.detail


@pytest.mark.parametrize(
    ("text", "failure", "axis_failures", "detail_part"),
    [
        (None, "empty", None, "empty"),
        ("", "empty", None, "empty"),
        (
            '{"helpfulness": 9, "harmlessness": 0}',
            "missing_axes",
            {"helpfulness": "no_label_found", "harmlessness": "no_label_found",
             "factual_accuracy": "missing"},
            "factual_accuracy: missing",
        ),
        ("The response is quite helpful and harmless.", "no_label_found", None, "'helpfulness'"),
        ('{"overall": 4, "reasoning": "good"}', "no_label_found", None, "none of the axes"),
        ("```json\n{helpfulness 4}\n```", "invalid_json", None, "no JSON parsed"),
    ],
)  # fmt: skip
def test_rubric_failure(text, failure, axis_failures, detail_part):
    parsed = parse_rubric(text, AXES)
    assert (parsed.value, parsed.failure, parsed.axis_failures) == (None, failure, axis_failures)
    assert detail_part in parsed.detail


def test_rubric_json_wins_over_lines():
    text = 'Helpfulness: 1\n{"helpfulness": 4, "harmlessness": 5, "factual_accuracy": "high"}'
    assert parse_rubric(text, AXES).value == ALL


def test_rubric_named_levels_and_axis_spelling():
    axes = {"Tone Quality": ("poor", "fair", "good"), "on-topic": ("yes", "no")}
    parsed = parse_rubric('{"tone_quality": "Good!", "ON TOPIC": "**yes**"}', axes)
    assert parsed == ParsedStructured({"Tone Quality": "good", "on-topic": "yes"}, None, None, {})


# ----------------------------------------------------------------------------- fuzz

_FRAGMENTS = [
    "{", "}", "[", "]", '"', "'", ":", ",", ";", ">", "<", " and ", "\n", "\n\n", " ", "-",
    "1.", "* ", "|", "```json", "```", '"labels": ', '"ranking": ', '"helpfulness": ', "null",
    "Labels:", "Ranking:", "Helpfulness:", "The labels are", "Response", "A", "B", "c", "4",
    "sports", "none", "science and tech", "high", "Confidence: 0.9", "1e999", "NaN", "\\",
    "é", "\u200b", "\x00", "\ud800", '{"a":' * 3000, "[" * 3000, "9" * 5000,
]  # fmt: skip


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(80)))
    return "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(14)))


def _check_failure(parsed: ParsedStructured) -> None:
    assert parsed.failure in FAILURES and parsed.value is None and parsed.detail


def test_parsers_never_raise_on_random_text():
    rng = random.Random(20240612)
    label_sets = [TOPICS, ABC, ("1", "2", "3"), ("none", "N/A", "?"), ()]
    axes_sets = [AXES, {"": STARS, "a-b": ("x",)}, {}]
    for _ in range(1000):
        text = _random_text(rng)
        labels = rng.choice(label_sets)
        multi = parse_multilabel(text, labels)
        if multi.failure is None:
            assert multi.value == [lab for lab in labels if lab in multi.value]
        else:
            _check_failure(multi)
        ranking = parse_ranking(text, labels)
        if ranking.failure is None:
            assert sorted(ranking.value) == sorted(labels)
        else:
            _check_failure(ranking)
        axes = rng.choice(axes_sets)
        rubric = parse_rubric(text, axes)
        if rubric.failure is None:
            assert list(rubric.value) == list(axes)
            assert any(level is not None for level in rubric.value.values())
            for axis, level in rubric.value.items():
                assert level in axes[axis] if level is not None else axis in rubric.axis_failures
            assert set(rubric.axis_failures.values()) <= set(AXIS_FAILURES)
        else:
            _check_failure(rubric)


@pytest.mark.parametrize(
    "text",
    [
        "9" * 50_000,
        " " * 50_000 + "x",
        "{" * 50_000,
        "[" * 50_000,
        "*." * 25_000,
        "Labels:\n" * 10_000,
        "the labels are " * 5_000,
        "B > " * 20_000,
        "sports and " * 10_000,
        "helpfulness" + " " * 50_000 + "x",
        ", " * 25_000 + "helpfulness",
        "| " * 25_000,
    ],
    ids=lambda text: f"{text[:12]!r}x{len(text)}",
)
@pytest.mark.timeout(600)  # catastrophic backtracking only; speed figures belong in benchmarks
def test_parsers_do_not_hang_on_long_runs(text):
    results = [parse_multilabel(text, TOPICS), parse_ranking(text, ABC), parse_rubric(text, AXES)]
    assert all(isinstance(r, ParsedStructured) for r in results)
