"""The one error type a user sees: what went wrong, where, and what to do.

Every problem with user input (config, gold sets, templates, replay files, missing keys) is
raised as a `UserError`; the CLI prints it and exits with code 2. Anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Problem:
    """One problem at one place: `file:line` and/or a key path such as `models[1].params`."""

    message: str
    file: Path | str | None = None
    line: int | None = None
    key: str | None = None

    def where(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line else str(self.file))
        if self.key:
            parts.append(f"key '{self.key}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


@dataclass
class UserError(Exception):
    """Bad input. `problems` lists every place at fault; `hint` says what to do."""

    problems: list[Problem] = field(default_factory=list)
    hint: str | None = None

    @classmethod
    def at(
        cls,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> UserError:
        return cls([Problem(message, file, line, key)], hint)

    def __str__(self) -> str:
        shown = self.problems[:50]
        lines = [str(p) for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"... and {len(self.problems) - len(shown)} more problems")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)
