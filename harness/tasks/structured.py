"""What the structured task types (multilabel, ranking, rubric) share."""

from __future__ import annotations

from harness.tasks.base import ParsedOutput
from harness.tasks.parsing_structured import ParsedStructured


def structured_output(method: str, s: ParsedStructured) -> ParsedOutput:
    """A structured parse as a label's ParsedOutput; the failing axes become its detail."""
    detail = s.detail
    if s.axis_failures and not detail:
        detail = "; ".join(f"{axis}: {why}" for axis, why in s.axis_failures.items())
    return ParsedOutput(s.value, s.failure, method if s.failure is None else None, None, detail)
