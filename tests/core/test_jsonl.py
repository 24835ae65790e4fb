"""Pins the one JSONL reader (harness.core.jsonl) that gold sets, few-shot pools, replay files
and items to label go through: what is skipped, what each bad line says, with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import Problem, UserError
from harness.core.jsonl import read_jsonl

PATH = Path("items.jsonl")
DEEP = "[" * 100_000 + "]" * 100_000


def read(text: str, **kw) -> tuple[list[tuple[int, object]], list[Problem]]:
    problems: list[Problem] = []
    rows = list(read_jsonl(PATH, problems, text=text, **kw))
    return rows, problems


def where(problems: list[Problem]) -> list[tuple[int | None, str]]:
    assert all(p.file == PATH for p in problems)
    return [(p.line, p.message) for p in problems]


def test_comments_and_blank_lines_are_skipped_and_lines_keep_their_numbers():
    text = '# from the 2024 export\n\n   \n{"id": 1}\n  # indented comment\n\t\n{"id": 2}\n'
    rows, problems = read(text)
    assert rows == [(4, {"id": 1}), (7, {"id": 2})]
    assert problems == []


def test_crlf_line_ends_and_a_bom_are_no_problem(tmp_path: Path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1}\r\n# c\r\n\r\n{"id": 2}\r\n')
    problems: list[Problem] = []
    assert list(read_jsonl(path, problems)) == [(1, {"id": 1}), (4, {"id": 2})]
    assert problems == []


def test_lines_end_at_newline_only():
    # U+2028 and a form feed inside a line do not split it (str.splitlines would).
    rows, problems = read('{"t": "a\u2028b"}\n{"t": "c"}\x0c\n')
    assert rows == [(1, {"t": "a\u2028b"}), (2, {"t": "c"})]
    assert problems == []


def test_invalid_json_is_reported_with_its_line_and_reading_goes_on():
    rows, problems = read('{"id": 1}\n{bad json}\nnot json\n{"id": 4}\n')
    assert rows == [(1, {"id": 1}), (4, {"id": 4})]
    assert where(problems) == [
        (2, "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (3, "invalid JSON: Expecting value (column 1)"),
    ]


@pytest.mark.parametrize(
    ("detail", "bad", "deep"),
    [
        ("column", "invalid JSON: Expecting value (column 1)", "invalid JSON: nested too deeply"),
        ("message", "invalid JSON: Expecting value", "invalid JSON: nested too deeply"),
        ("python", "invalid JSON: Expecting value", "invalid JSON: maximum recursion depth"),
    ],
)
def test_each_caller_keeps_its_own_wording(detail, bad, deep):
    _, problems = read(f"nope\n{DEEP}\n", detail=detail)
    assert [p.line for p in problems] == [1, 2]
    assert problems[0].message == bad
    assert problems[1].message.startswith(deep)


def test_non_object_lines_are_problems_only_when_the_caller_says_so():
    text = '[1, 2]\n"just a string"\n42\nnull\n{"id": 5}\n'
    rows, problems = read(text, non_object="each line must be a JSON object")
    assert rows == [(5, {"id": 5})]
    assert where(problems) == [(n, "each line must be a JSON object") for n in (1, 2, 3, 4)]
    rows, problems = read(text)
    assert rows == [(1, [1, 2]), (2, "just a string"), (3, 42), (4, None), (5, {"id": 5})]
    assert problems == []


def test_a_torn_last_line_is_invalid_json_on_that_line():
    rows, problems = read('{"id": 1}\n{"id": 2, "text": "cut off he')
    assert rows == [(1, {"id": 1})]
    assert where(problems) == [(2, "invalid JSON: Unterminated string starting at (column 19)")]
    # A whole last line without a newline is fine.
    assert read('{"id": 1}\n{"id": 2}') == ([(1, {"id": 1}), (2, {"id": 2})], [])


def test_problems_arrive_in_line_order_as_the_caller_reads():
    problems: list[Problem] = []
    lines = read_jsonl(PATH, problems, text='{bad\n{"id": 2}\n{bad\n{"id": 4}\n')
    assert next(lines) == (2, {"id": 2})
    assert [p.line for p in problems] == [1]
    problems.append(Problem("caller's own problem", PATH, 2))
    assert next(lines) == (4, {"id": 4})
    assert [p.line for p in problems] == [1, 2, 3]
    assert list(lines) == []


def test_a_caller_that_stops_stops_the_reading():
    problems: list[Problem] = []
    for _lineno, _obj in read_jsonl(PATH, problems, text='{"id": 1}\n{bad\n{bad\n'):
        break
    assert problems == []


def test_not_utf8_names_the_file_the_line_and_the_byte(tmp_path: Path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": 1}\n# note\n{"id": "caf\xe9"}\n')
    with pytest.raises(UserError) as info:
        read_jsonl(path, [], what="replay labels file")  # raised at once, before iterating
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (path, 3)
    assert problem.message == "replay labels file is not valid UTF-8 (byte 28)"
    assert info.value.hint == "re-save the file as UTF-8"


def test_a_missing_or_empty_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="few-shot pool not found"):
        read_jsonl(tmp_path / "nope.jsonl", [], what="few-shot pool")
    (tmp_path / "empty.jsonl").write_text(" \n\n", encoding="utf-8")
    with pytest.raises(UserError, match="few-shot pool is empty"):
        read_jsonl(tmp_path / "empty.jsonl", [], what="few-shot pool")


def test_given_text_is_read_instead_of_the_file():
    # The path only names the file in problems (a gold set reads its bytes once, for the hash).
    rows, problems = read(json.dumps({"id": "x"}) + "\nbad\n")
    assert rows == [(1, {"id": "x"})]
    assert where(problems) == [(2, "invalid JSON: Expecting value (column 1)")]
