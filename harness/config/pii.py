"""`models[].mask_pii`: which kinds of personal data to mask, and the team's own patterns.

The masking itself is harness/inputs/pii.py; this is only what a config may say.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from harness.config.task import LocatedValueError, Strict

PiiKind = Literal["email", "phone", "card", "ip"]
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "ip")

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class PiiConfig(Strict):
    """`models[].mask_pii` as a mapping; `mask_pii: true` is this with its defaults."""

    enabled: bool = True
    kinds: list[PiiKind] = Field(default_factory=lambda: list(PII_KINDS))
    # name -> regex; each match becomes [NAME] (e.g. customer_id: "CUST-\\d{6}").
    patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"kinds {value} list a kind twice")
        return value

    @field_validator("patterns")
    @classmethod
    def _valid_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not NAME.match(name):
                raise LocatedValueError(
                    f"pattern name {name!r} must be letters, digits and _ (it becomes the "
                    f"placeholder [{name.upper()}])",
                    (name,),
                )
            if name.lower() in PII_KINDS:
                raise LocatedValueError(
                    f"pattern name {name!r} is a built-in kind; list it under 'kinds' or "
                    "choose another name",
                    (name,),
                )
            try:
                compiled = re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise LocatedValueError(
                    f"pattern {name!r} is not a valid regular expression ({exc}); fix it "
                    "(in YAML, single-quote a regex so its backslashes stay)",
                    (name,),
                ) from None
            if compiled.fullmatch(""):
                raise LocatedValueError(
                    f"pattern {name!r} matches the empty string, so it would insert "
                    f"[{name.upper()}] everywhere; make it match at least one character",
                    (name,),
                )
        return value
