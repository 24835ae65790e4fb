"""The task of an experiment: what is labelled, and what a label is (labels, scales, axes).

Split from experiment.py, which holds the rest of an experiment's config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocatedValueError(ValueError):
    """A validator's error at a known key path below the validated model, e.g. `setups[1].model`.

    pydantic reports errors of model validators at the model itself; `loc` lets the loader
    still name the exact key and its line.
    """

    def __init__(self, message: str, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


class LabelSpec(Strict):
    name: str = Field(min_length=1)
    description: str | None = None


PAIRWISE_LABELS = ("A", "B", "tie")


class PairwiseConfig(Strict):
    """Which item fields hold the two responses, and whether to ask in both orders."""

    response_a: str = "response_a"
    response_b: str = "response_b"
    # Ask every pair twice, the second time with the responses swapped, and map the second
    # verdict back: position bias becomes measurable and cancels out of the final verdict.
    swap: bool = True


class AxisSpec(Strict):
    """One axis of a rubric: an ordinal scale of its own, levels listed low to high."""

    name: str = Field(min_length=1)
    description: str | None = None
    labels: list[LabelSpec] = Field(min_length=2)

    _labels_as_specs = field_validator("labels", mode="before")(
        lambda cls, v: (
            [{"name": str(x)} if isinstance(x, str | int | float) else x for x in v]
            if isinstance(v, list)
            else v
        )
    )


class RankingConfig(Strict):
    """The item field holding the candidates: a list of {id, text} objects or of strings
    (then their ids are A, B, C... in order)."""

    candidates: str = "candidates"


STRUCTURED_TYPES = ("multilabel", "ranking", "rubric")


class TaskConfig(Strict):
    """What is labelled. `classification`: one label of `labels`. `ordinal`: one level of
    `labels`, listed from lowest to highest. `pairwise`: which of two responses is better,
    labels A, B and tie (A = the response in `pairwise.response_a`). `multilabel`: any
    subset of `labels`. `ranking`: an order of the item's candidates, best first. `rubric`:
    one level on each of `axes`."""

    type: Literal["classification", "ordinal", "pairwise", "multilabel", "ranking", "rubric"] = (
        "classification"
    )
    name: str | None = None
    labels: list[LabelSpec] = Field(default_factory=list)
    guidelines: str | None = None
    guidelines_file: Path | None = None
    pairwise: PairwiseConfig | None = None
    axes: list[AxisSpec] = Field(default_factory=list)
    ranking: RankingConfig | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_specs(cls, value: Any) -> Any:
        # `labels: [positive, negative]` is the short form of `[{name: positive}, ...]`.
        if isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, bool):  # YAML reads yes/no/on/off/true/false as booleans
                    raise LocatedValueError(
                        f"label {v!r} is a YAML boolean (from yes/no/on/off/true/false): quote it",
                        (i,),
                    )
            return [{"name": str(v)} if isinstance(v, str | int | float) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_labels(self) -> TaskConfig:
        if self.type == "pairwise":
            if not self.labels:  # frozen model: fill the fixed outcomes in place
                object.__setattr__(self, "labels", [LabelSpec(name=n) for n in PAIRWISE_LABELS])
            if self.pairwise is None:
                object.__setattr__(self, "pairwise", PairwiseConfig())
            # Fixed codes: combining both orders turns a conflict into a tie, so tie must exist.
            if tuple(lab.name for lab in self.labels) != PAIRWISE_LABELS:
                raise LocatedValueError(
                    f"a pairwise task's labels are exactly {list(PAIRWISE_LABELS)} in this "
                    "order (leave 'labels' out to get them)",
                    ("labels",),
                )
        elif self.pairwise is not None:
            raise LocatedValueError("'pairwise' settings need type: pairwise", ("pairwise",))
        if self.type == "rubric":
            if not self.axes:
                raise LocatedValueError("a rubric task needs 'axes'", ("axes",))
            names = [a.name for a in self.axes]
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise LocatedValueError(f"duplicate axis {name!r}", ("axes", i))
        elif self.axes:
            raise LocatedValueError("'axes' need type: rubric", ("axes",))
        if self.type == "ranking" and self.ranking is None:
            object.__setattr__(self, "ranking", RankingConfig())
        elif self.type != "ranking" and self.ranking is not None:
            raise LocatedValueError("'ranking' settings need type: ranking", ("ranking",))
        if self.type not in ("rubric", "ranking") and len(self.labels) < 2:
            raise LocatedValueError("a task needs at least two labels", ("labels",))
        if self.type in ("rubric", "ranking") and self.labels:
            raise LocatedValueError(
                f"a {self.type} task has no 'labels' (its "
                f"{'levels are per axis' if self.type == 'rubric' else 'candidates are per item'})",
                ("labels",),
            )
        names = [label.name for label in self.labels]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise LocatedValueError(
                    f"duplicate label {name!r}: each label must appear once", ("labels", i)
                )
        if self.guidelines and self.guidelines_file:
            raise LocatedValueError(
                "give either 'guidelines' or 'guidelines_file', not both", ("guidelines_file",)
            )
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]
