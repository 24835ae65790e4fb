"""Prompt variants: sandboxed Jinja2 templates rendered into chat messages, plus few-shot.

A template file is split into messages by marker lines `--- system`, `--- user` and
`--- assistant` (a file without markers is one user message). Each section is rendered on
its own, so item text can never open a new message: a review that contains a line
`--- system` stays inside the user message. Templates come from pull requests, so they run
in Jinja's immutable sandbox with undefined variables as errors and no file access.

Template variables: `item` (the gold item's input fields and `id`), `labels` (list of
{name, description}), `label_names`, `guidelines`, `examples` (few-shot: the pool items'
fields plus `label`), `task` ({type, name}).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta as jinja_meta

from harness.core.errors import Problem, UserError
from harness.core.paths import read_text_file
from harness.core.records import GoldItem
from harness.inputs.sandbox import PromptSandbox, render_bounded

# `\r?`: a template saved with Windows line endings still has its markers recognised.
ROLE_MARKER = re.compile(r"^---[ \t]*(system|user|assistant)[ \t]*\r?$", re.MULTILINE)
CONTEXT_NAMES = frozenset({"item", "labels", "label_names", "guidelines", "examples", "task"})

# An empty loader: `{% include %}`, `{% import %}` and `{% extends %}` find no template (a
# TemplateError) instead of reaching the file system or failing with a TypeError. The
# sandbox itself (harness/inputs/sandbox.py) also prints data only and bounds sizes.
_ENV = PromptSandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    loader=jinja2.DictLoader({}),
)


@dataclass(frozen=True)
class Section:
    role: str
    template: jinja2.Template
    first_line: int  # 1-based line of the section's first template line in the file


@dataclass(frozen=True)
class PromptTemplate:
    path: Path
    source: str
    sections: tuple[Section, ...]

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()


def load_template(path: Path) -> PromptTemplate:
    """Parse a template file; syntax errors and unknown variables name the file and line."""
    _, source = read_text_file(path, "prompt template")
    pieces = _split_sections(source)
    sections = []
    problems: list[Problem] = []
    for role, body, first_line in pieces:
        try:
            ast = _ENV.parse(body)
            # Also compiles: an unknown filter or test (TemplateAssertionError) is found here.
            unknown = sorted(jinja_meta.find_undeclared_variables(ast) - CONTEXT_NAMES)
        except jinja2.TemplateSyntaxError as exc:
            line = first_line + (exc.lineno or 1) - 1
            problems.append(Problem(f"template syntax error: {exc.message}", path, line))
            continue
        if unknown:
            line = first_line + _line_of(body, unknown[0]) - 1
            problems.append(
                Problem(
                    f"unknown template variable(s) {unknown}; available: {sorted(CONTEXT_NAMES)} "
                    "(item fields are reached as item.<field>)",
                    path,
                    line,
                )
            )
            continue
        sections.append(Section(role, _ENV.from_string(body), first_line))
    if problems:
        raise UserError(problems, hint="fix the template; see prompts/ for working examples")
    if not any(s.role == "user" for s in sections):
        raise UserError.at(
            "template has no user message",
            file=path,
            hint="add a '--- user' section (or drop all markers)",
        )
    return PromptTemplate(path, source, tuple(sections))


def _split_sections(source: str) -> list[tuple[str, str, int]]:
    markers = list(ROLE_MARKER.finditer(source))
    if not markers:
        return [("user", source, 1)]
    pieces = []
    head = source[: markers[0].start()]
    if head.strip() and not re.fullmatch(r"\s*(\{#.*?#\}\s*)*", head, re.DOTALL):
        pieces.append(("user", head, 1))
    for i, m in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(source)
        body = source[m.end() + 1 : end] if m.end() < len(source) else ""
        first_line = source.count("\n", 0, m.end()) + 2
        pieces.append((m.group(1), body, first_line))
    return pieces


def _line_of(body: str, name: str) -> int:
    for i, line in enumerate(body.splitlines(), start=1):
        if re.search(rf"\b{re.escape(name)}\b", line):
            return i
    return 1


def item_context(item: GoldItem) -> dict[str, Any]:
    return {"id": item.id, **item.fields}


def example_context(example: GoldItem) -> dict[str, Any]:
    return {"id": example.id, **example.fields, "label": example.gold}


def render(
    template: PromptTemplate,
    item: GoldItem,
    *,
    labels: Sequence[Mapping[str, Any]],
    guidelines: str,
    examples: Sequence[GoldItem],
    task: Mapping[str, Any],
) -> tuple[dict[str, str], ...]:
    """Render one item into chat messages; raise UserError if the template fails on it."""
    context = {
        "item": item_context(item),
        "labels": list(labels),
        "label_names": [label["name"] for label in labels],
        "guidelines": guidelines,
        "examples": [example_context(e) for e in examples],
        "task": dict(task),
    }
    messages = []
    for section in template.sections:
        try:
            text = render_bounded(section.template, context).strip()
        except jinja2.UndefinedError as exc:
            raise UserError.at(
                f"template fails on item {item.id!r}: {exc.message}",
                file=template.path,
                line=section.first_line,
                hint=f"the item's fields are {sorted(item_context(item))}",
            ) from None
        except jinja2.exceptions.SecurityError as exc:
            raise UserError.at(
                f"template tried an unsafe operation: {exc}",
                file=template.path,
                line=section.first_line,
                hint="templates may only read the documented variables",
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise UserError.at(
                f"template tried to include, import or extend {exc.name!r}",
                file=template.path,
                line=section.first_line,
                hint="a prompt template is one self-contained file; paste the shared text in",
            ) from None
        except jinja2.TemplateError as exc:
            raise UserError.at(
                f"template error on item {item.id!r}: {exc}",
                file=template.path,
                line=section.first_line,
                hint="fix the template; `prelabel validate` renders it on every item",
            ) from None
        except Exception as exc:  # e.g. `{{ 1 / 0 }}`: the template's fault, not a bug of ours
            raise UserError.at(
                f"template error on item {item.id!r}: {type(exc).__name__}: {exc}",
                file=template.path,
                line=section.first_line,
                hint="fix the template; `prelabel validate` renders it on every item",
            ) from None
        if text or section.role == "user":
            messages.append({"role": section.role, "content": text})
    return tuple(messages)


# ---------------------------------------------------------------------------------------------
# Few-shot selection. The pool never overlaps the gold items (checked by `pool_overlap`).


def normalised_text(item: GoldItem) -> str:
    # Sorted by field name: the same item exported with another key order is the same text.
    text = " ".join(v for _, v in sorted(item.fields.items()) if isinstance(v, str))
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def pool_overlap(pool: Sequence[GoldItem], gold: Sequence[GoldItem]) -> list[tuple[str, str]]:
    """(pool id, gold id) pairs that are the same item by id or by normalised text."""
    gold_ids = {g.id for g in gold}
    gold_texts = {normalised_text(g): g.id for g in gold}
    clashes = []
    for p in pool:
        if p.id in gold_ids:
            clashes.append((p.id, p.id))
        elif (t := normalised_text(p)) and t in gold_texts:
            clashes.append((p.id, gold_texts[t]))
    return clashes


class FewShotSelector:
    """Chooses k pool examples for each item: fixed, stratified random, or most similar."""

    def __init__(
        self, pool: Sequence[GoldItem], k: int, strategy: str, seed: int, label_order: Sequence[str]
    ):
        self.pool = list(pool)
        self.k = min(k, len(self.pool))
        self.strategy = strategy
        self.seed = seed
        self.label_order = list(label_order)
        self._fixed = random.Random(seed).sample(self.pool, self.k)
        self._vectorizer = self._matrix = None
        if strategy == "similar":
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            try:
                self._matrix = self._vectorizer.fit_transform(
                    [normalised_text(p) for p in self.pool]
                )
            except ValueError:  # sklearn: "empty vocabulary"
                raise UserError.at(
                    "few-shot strategy 'similar' needs text in the pool items, found none",
                    hint="give the pool items a text field, or use strategy fixed/stratified",
                ) from None

    def select(self, item: GoldItem) -> list[GoldItem]:
        if self.strategy == "fixed":
            return self._fixed
        if self.strategy == "stratified":
            return self._stratified(item)
        return self._similar(item)

    def _stratified(self, item: GoldItem) -> list[GoldItem]:
        # Seeded per item, so an item always gets the same examples (and the same cache key).
        rng = random.Random(f"{self.seed}:{item.id}")
        by_label = {label: [p for p in self.pool if p.gold == label] for label in self.label_order}
        for group in by_label.values():
            rng.shuffle(group)
        chosen: list[GoldItem] = []
        while len(chosen) < self.k:
            progressed = False
            for label in self.label_order:
                if by_label[label] and len(chosen) < self.k:
                    chosen.append(by_label[label].pop())
                    progressed = True
            if not progressed:
                break
        rng.shuffle(chosen)
        return chosen

    def _similar(self, item: GoldItem) -> list[GoldItem]:
        query = self._vectorizer.transform([normalised_text(item)])
        scores = (self._matrix @ query.T).toarray().ravel()
        # Most similar last, nearest the item, as few-shot studies suggest; ties by pool order.
        order = sorted(range(len(self.pool)), key=lambda i: (-scores[i], i))[: self.k]
        return [self.pool[i] for i in reversed(order)]
