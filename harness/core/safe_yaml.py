"""YAML from pull requests: `safe_load` stops code (`!!python/object/apply:os.system`), this
stops resource exhaustion.

- An alias bomb (`a: &a [x, x, ...]`, `b: &b [*a, *a, ...]`, ...) composes into a small graph
  that expands into billions of values once walked, validated or hashed.
- A recursive alias (`x: &a [*a]`) never ends.
- Thousands of nested brackets overflow the parser's stack.

Each becomes a `UserError` naming the config, instead of a hang or a traceback. Anchors and
aliases themselves stay allowed (`params: *shared` is a fine way to reuse settings).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.core.errors import UserError

MAX_VALUES = 100_000  # a config has hundreds; an expansion beyond this is an attack or a bug


def compose_checked(text: str, path: Path) -> yaml.Node | None:
    """`yaml.compose` with a SafeLoader, refusing documents too deep or too large expanded."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise UserError.at(
            "the YAML is nested too deeply to read",
            file=path,
            hint="a config needs a few levels of nesting; remove the runaway brackets",
        ) from None
    size = _expanded(node, {})
    if size > MAX_VALUES:
        raise UserError.at(
            f"the YAML expands to more than {MAX_VALUES:,} values through its aliases "
            "(*name), or an alias refers to itself",
            file=path,
            hint="use anchors and aliases only to reuse small settings",
        )
    return node


def _expanded(node: yaml.Node | None, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is expanded (capped)."""
    if node is None:
        return 0
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_VALUES + 1  # seen again before finishing: a cycle, too large
    size = 1
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    for child in children:
        size += _expanded(child, memo)
        if size > MAX_VALUES:
            break
    memo[key] = min(size, MAX_VALUES + 1)
    return memo[key]
