"""Loading an experiment config: safe YAML, every validation problem reported with its file,
line and key path, paths resolved against the config's folder."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.config import Experiment
from harness.config.task import LocatedValueError
from harness.core.errors import Problem, UserError
from harness.core.safe_yaml import compose_checked


class ResolvedExperiment:
    """An `Experiment` plus where it came from: paths resolved against the config's folder."""

    def __init__(self, experiment: Experiment, path: Path, text: str):
        self.experiment = experiment
        self.path = path
        self.base = path.absolute().parent  # stays right if the process changes directory
        self.text = text

    def resolve(self, p: Path | str) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    @functools.cached_property
    def key_lines(self) -> dict[str, int]:
        """'models[1].model' -> its line in the config file (empty if there is no text)."""
        try:
            node = yaml.compose(self.text, Loader=yaml.SafeLoader) if self.text else None
        except yaml.YAMLError:
            return {}
        return {_key_path(k): line for k, line in _key_lines(node).items()}

    @property
    def config_hash(self) -> str:
        canonical = json.dumps(self.experiment.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_experiment(path: Path | str) -> ResolvedExperiment:
    """Read and validate an experiment YAML; raise UserError naming file, key and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError.at(
            "config file not found",
            file=path,
            hint="check the path; configs usually live under configs/",
        ) from None
    except UnicodeDecodeError as exc:
        raise UserError.at(
            f"not valid UTF-8 (byte {exc.start})",
            file=path,
            line=exc.object[: exc.start].count(b"\n") + 1,
            hint="save the config as UTF-8",
        ) from None
    except OSError as exc:
        raise UserError.at(
            f"cannot read config: {exc.strerror}",
            file=path,
            hint="name a YAML file the user running prelabel can read",
        ) from None
    try:
        node = compose_checked(text, path)  # core/safe_yaml.py: no alias bombs, no runaway nesting
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError.at(
            f"YAML syntax error: {problem}",
            file=path,
            line=line,
            hint="fix the YAML at that line (indentation, quotes, colons)",
        ) from None
    if not isinstance(data, dict):
        raise UserError.at(
            "the config must be a YAML mapping (key: value pairs)",
            file=path,
            hint="see configs/demo.yaml for the expected shape",
        )
    lines = _key_lines(node)
    duplicates = _duplicate_keys(node, path)
    if duplicates:
        raise UserError(duplicates, hint="each key may appear once in a mapping; remove one")
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise UserError(
            _problems(exc, path, lines), hint="see the config reference in README.md"
        ) from None
    return ResolvedExperiment(experiment, path, text)


def _problems(exc: ValidationError, path: Path, lines: dict[tuple, int]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # pydantic appends union/validator branch names to loc; keep the data path only.
        data_loc = tuple(x for x in loc if isinstance(x, int) or "[" not in str(x))
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, LocatedValueError):
            data_loc += error.loc
        key = _key_path(data_loc)
        line = _nearest_line(lines, data_loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{data_loc[-1]}' (check its spelling; unknown keys are rejected)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        problems.append(Problem(msg, path, line, key or None))
    return problems


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _duplicate_keys(node: yaml.Node | None, path: Path, prefix: tuple = ()) -> list[Problem]:
    """A key given twice in one mapping: YAML keeps the last silently, so say so."""
    problems: list[Problem] = []
    children = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = (*prefix, key_node.value)
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                problems.append(Problem("duplicate key", path, line, _key_path(key)))
            seen.add(key_node.value)
            children.append((value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        children = [(child, (*prefix, i)) for i, child in enumerate(node.value)]
    for child, key in children:
        problems += _duplicate_keys(child, path, key)
    return problems


def _key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path of a composed YAML document to its 1-based line number."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            out[path] = key_node.start_mark.line + 1
            out.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            out[(*prefix, i)] = child.start_mark.line + 1
            out.update(_key_lines(child, (*prefix, i)))
    return out
