"""The Jinja sandbox prompt templates run in: templates come from pull requests.

Jinja's `ImmutableSandboxedEnvironment` already refuses `_`-prefixed attributes (the road to
`__subclasses__`, `__globals__`, `os`), mutating methods and unsafe `str.format` fields; an
empty loader makes `include`, `import` and `extends` find nothing. On top of that:

- A template prints data only: text, numbers, booleans and lists or mappings of them. A
  method, a function, a class (`{{ ''.upper }}`, `{{ cycler }}`, `{{ self }}`) is an error
  rather than its `<... object at 0x...>` text in a prompt. Methods and functions reached from
  a template may be called but never turned into text, by `|string`, `~`, `%` or `format`
  alike: `PromptSandbox.getattr` hands them out wrapped in `_Callable`, which refuses.
- `lipsum`, `cycler` and `joiner` are gone from the globals (no prompt needs them);
  `range`, `dict` and `namespace` stay.
- Sizes are bounded: `'x' * n`, `n ** m` and the rendered text itself (`MAX_RENDERED_CHARS` a
  message), so a template cannot exhaust the memory of the machine that renders it.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED_CHARS = 100_000_000  # per message; 25M tokens, far beyond any context window
MAX_EXPONENT = 10_000
_SCALARS = (str, int, float, bool, type(None))


def is_data(value: Any, depth: int = 0) -> bool:
    """Text, numbers, booleans, None, and lists or mappings of them."""
    if isinstance(value, _SCALARS):
        return True
    if depth > 32:
        return False
    if isinstance(value, list | tuple):
        return all(is_data(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, _SCALARS) and is_data(v, depth + 1) for k, v in value.items())
    return False


class _Callable:
    """A method or function handed to a template: callable, never text."""

    __slots__ = ("target",)

    def __init__(self, target: Any):
        self.target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("call it through the sandbox")  # PromptSandbox.call unwraps

    def _refuse(self, *args: Any) -> str:
        raise SecurityError(
            "a template may print text and numbers, not a method or function "
            "(did you forget the parentheses of a call?)"
        )

    __str__ = __repr__ = __format__ = __html__ = _refuse


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}` output: data only."""
    if isinstance(value, Undefined) or is_data(value):
        return value
    what = "method or function" if isinstance(value, _Callable) else type(value).__name__
    if isinstance(value, list | tuple | dict):
        what += " holding a method, a function or another object"
    raise SecurityError(
        f"a template may print text, numbers and lists or mappings of them, not a {what}"
    )


class PromptSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any):
        super().__init__(finalize=_finalize, **options)
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.globals = {name: _wrap(value) for name, value in self.globals.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _wrap(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _wrap(super().getitem(obj, argument))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, _Callable):
            __obj = __obj.target
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > MAX_RENDERED_CHARS:
                    raise SecurityError(f"'*' would build {len(seq) * n:,} characters or elements")
        elif operator == "**":
            if isinstance(right, int | float) and right > MAX_EXPONENT and abs(left) > 1:
                raise SecurityError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
        elif operator == "%" and isinstance(left, str):
            args = right if isinstance(right, tuple) else (right,)
            if not all(is_data(a) for a in args):
                raise SecurityError("'%' may format text and numbers only")
        return super().call_binop(context, operator, left, right)


def _wrap(value: Any) -> Any:
    if callable(value) and not isinstance(value, Undefined | _Callable | type(None)):
        return _Callable(value)
    return value


def render_bounded(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render, refusing output beyond `MAX_RENDERED_CHARS` before it fills the memory."""
    parts, size = [], 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise SecurityError(f"the rendered message exceeds {MAX_RENDERED_CHARS:,} characters")
        parts.append(chunk)
    return "".join(parts)
