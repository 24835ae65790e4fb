"""`harness.label` and its result (api station): pre-label new items with the setup an
evaluation chose, from a notebook or a script, as `prelabel label` does (the CLI calls this).

    done = harness.label("configs/demo.yaml", [{"id": "a1", "text": "..."}, ...])
    done.counts, done.estimates, list(done)        # prelabels, one dict per item
    done.to_pandas(), done.review_queue            # in Jupyter `done` shows a summary

`items` is a pool file (JSONL, CSV, Parquet or a saved Hugging Face dataset folder) or any
iterable of dicts with an `id`. An iterable is written once to `input.jsonl` in the label
run's folder (what was labelled stays beside its labels) and streamed from there like a
file, so a generator of a million items is never held in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.api.evaluation import _read as read_run_json
from harness.core.aio import call_off_loop
from harness.core.errors import Problem, UserError

Items = str | os.PathLike[str] | Iterable[Mapping[str, Any]]
ITEMS = "items"  # what a problem with a given item is said to be in


class Labelled:
    """A finished label run (runs/<id>-label-...): `prelabels` (prelabels.jsonl, read when
    iterated), `review_queue`, `estimates` (label shares in the pool by prediction-powered
    inference), `counts`, the `setup` and `threshold` used, and `manifest`."""

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        self.manifest: dict[str, Any] = _read(self.run_dir / "manifest.json")
        if self.manifest.get("kind") != "label":
            raise UserError.at(
                "not a label run (no `kind: label` in its manifest)",
                file=self.run_dir / "manifest.json",
                hint="name a folder `prelabel label` or harness.label wrote; an evaluation "
                "run reads with harness.load_run",
            )
        if not (self.run_dir / "prelabels.jsonl").is_file():
            raise UserError.at(
                f"label run {self.run_dir.name} has no prelabels "
                f"(status: {self.manifest.get('status', 'unknown')})",
                file=self.run_dir,
                hint="label the items again: the labels already paid for are cached",
            )
        self.estimates: dict[str, Any] = _read(self.run_dir / "estimates.json")
        self.mlflow_run_id: str | None = None

    setup = property(lambda self: self.manifest["setup"])
    threshold = property(lambda self: self.manifest.get("threshold"))
    counts = property(lambda self: dict(self.manifest.get("counts") or {}))
    calls = property(lambda self: int(self.manifest.get("calls") or 0))
    cached = property(lambda self: int(self.manifest.get("cached") or 0))

    @property
    def prelabels(self) -> _Rows:
        return _Rows(self.run_dir / "prelabels.jsonl", self.counts.get("items"))

    @property
    def review_queue(self) -> _Rows:
        return _Rows(self.run_dir / "review_queue.jsonl", self.counts.get("queue"))

    def __len__(self) -> int:
        return len(self.prelabels)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.prelabels)

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"Labelled({self.run_dir.name!r}, setup={self.setup!r}, items={c.get('items')}, "
            f"accept={c.get('accept')}, review={c.get('review')})"
        )

    def to_pandas(self, which: str = "prelabels") -> Any:
        """prelabels.jsonl (or `which="review_queue"`) as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError:
            raise UserError.at(
                "Labelled.to_pandas() needs pandas, which is not installed",
                hint="pip install pandas (or iterate: each prelabel is a dict)",
            ) from None
        if which not in ("prelabels", "review_queue"):
            raise UserError.at(f"unknown table {which!r}", hint="prelabels or review_queue")
        return pd.DataFrame(list(getattr(self, which)))

    def _repr_html_(self) -> str:
        import html

        c, est = self.counts, self.estimates
        threshold = "none" if self.threshold is None else f"{self.threshold:.4f}"
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(str(r["label"])), _iv(r.get("ppi")), _iv(r.get("naive_llm_only"))
            )
            for r in est.get("labels", [])
        )
        return (
            f"<div><b>{html.escape(self.run_dir.name)}</b>: setup "
            f"{html.escape(str(self.setup))}, threshold {threshold}<br>"
            f"{c.get('items')} items: accept {c.get('accept')}, review {c.get('review')}; "
            f"review queue {c.get('queue')} ({c.get('blind_in_queue')} blind)"
            "<table><thead><tr><th>label</th><th>share in the pool (PPI, 95%)</th>"
            "<th>LLM alone</th></tr></thead><tbody>"
            f"{rows}</tbody></table></div>"
        )


class _Rows:
    """A JSONL file of the run as a sequence read when iterated (never held whole)."""

    def __init__(self, path: Path, n: int | None):
        self.path, self.n = path, n

    def __len__(self) -> int:
        if self.n is None:
            with self.path.open("rb") as f:
                self.n = sum(1 for _ in f)
        return self.n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def label(
    config: Any,
    items: Items,
    *,
    setup: str | None = None,
    evaluation: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    budget: int | None = None,
    blind_share: float = 0.1,
    audit_share: float = 0.05,
    seed: int = 0,
    ray: str | None = None,
    parquet: bool = False,
    mlflow: bool = False,
    on_warning: Any = None,
) -> Labelled:
    """Pre-label `items` with `setup` (default: the recommendation of the latest evaluation
    of this config, or of `evaluation`, a run folder) and route each to accept or review.
    Calls go through the label cache; `ray` makes them Ray tasks (an address: local, auto,
    ray://...); `parquet` also writes prelabels/review_queue/labels as Parquet. With
    `tracking.mlflow` in the config or `mlflow=True` the run is logged to MLflow."""
    from harness.api import _tracking, config_file
    from harness.api.tracking import log_run, mlflow_settings
    from harness.deploy.label import run_label

    for name, share in (("blind_share", blind_share), ("audit_share", audit_share)):
        if not (isinstance(share, int | float) and 0 <= share <= 1):
            raise UserError.at(f"{name} must be between 0 and 1, got {share!r}", key=name)
    if parquet:
        from harness.core.parquet import require_pyarrow

        require_pyarrow()
    with config_file(config, overrides) as path, _pool(items) as (pool, given):
        try:
            result = call_off_loop(  # under a notebook's running loop: in a worker thread
                run_label,
                path,
                pool,
                setup=setup,
                evaluation_dir=Path(evaluation) if evaluation is not None else None,
                runs_dir=Path(runs_dir) if runs_dir is not None else None,
                cache_dir=Path(cache_dir) if cache_dir is not None else None,
                budget=budget,
                blind_share=blind_share,
                audit_share=audit_share,
                seed=seed,
                on_warning=on_warning,
                ray=ray,
                keep_input=given,
            )
        except UserError as exc:
            if given:
                raise renamed(exc, pool) from None
            raise
        from harness.config.load import load_experiment

        exp = load_experiment(path).experiment
    if parquet:
        from harness.core.parquet import write_parquet_copies

        write_parquet_copies(
            result.run_dir, ("prelabels.jsonl", "review_queue.jsonl", "labels.jsonl")
        )
    done = Labelled(result.run_dir)
    settings = mlflow_settings(_tracking(exp.model_dump(mode="json")), mlflow)
    if settings is not None:
        try:
            done.mlflow_run_id = log_run(
                done.run_dir, settings, command="label", experiment=exp.name
            )
        except UserError as exc:
            import warnings

            if on_warning is not None:
                on_warning(str(exc))
            else:
                warnings.warn(str(exc), stacklevel=2)
    return done


class _pool:
    """(path, given) of the items: a file as it is, or an iterable written to a temporary
    JSONL file (removed on the way out; run_label keeps a copy in the run folder)."""

    def __init__(self, items: Items):
        self.items = items
        self.tmp: Path | None = None

    def __enter__(self) -> tuple[Path, bool]:
        if isinstance(self.items, str | os.PathLike):
            return Path(self.items), False
        if isinstance(self.items, Mapping | bytes):
            raise UserError.at(
                f"items must be a path or an iterable of dicts, got {type(self.items).__name__}",
                key=ITEMS,
                hint="pass a list of items, e.g. [{'id': 'a1', 'text': '...'}]",
            )
        fd, name = tempfile.mkstemp(prefix="prelabel-items-", suffix=".jsonl")
        self.tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for k, item in enumerate(self.items):
                    f.write(_line(k, item))
        except BaseException:  # __exit__ is not called when __enter__ raises
            self.tmp.unlink(missing_ok=True)
            raise
        return self.tmp, True

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def _line(k: int, item: Any) -> str:
    """One item as a JSONL line; a problem names the item by its position."""
    where = f"{ITEMS}[{k}]"
    if not isinstance(item, Mapping):
        raise UserError([Problem(f"item is a {type(item).__name__}, not a dict", where)])
    try:
        text = json.dumps(dict(item), ensure_ascii=False, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as exc:
        why = "a number is NaN or infinite" if "Out of range" in str(exc) else str(exc)
        raise UserError(
            [Problem(f"item cannot be written as JSON: {why}", where)],
            hint="give each field a string, number, bool, list or dict",
        ) from None
    return text + "\n"


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def renamed(exc: UserError, tmp: Path) -> UserError:
    """Problems found in the temporary items file, named by the item's position."""
    import re

    for problem in exc.problems:
        if problem.file is not None and Path(problem.file) == tmp and problem.line:
            problem.file, problem.line = f"{ITEMS}[{problem.line - 1}]", None
            problem.message = re.sub(  # a duplicate's "(line 3)": the first item's position
                r"\(line (\d+)\)", lambda m: f"({ITEMS}[{int(m[1]) - 1}])", problem.message
            )
    if exc.hint and tmp.name in exc.hint:
        exc.hint = "fix these items (numbered from 0, in the order given)"
    return exc


def _iv(block: Any) -> str:
    if not isinstance(block, dict) or block.get("estimate") is None:
        return "–"
    low, high = block.get("low"), block.get("high")
    if low is None or high is None:
        return f"{block['estimate']:.3f}"
    return f"{block['estimate']:.3f} [{low:.3f}, {high:.3f}]"


def _read(path: Path) -> dict[str, Any]:
    return read_run_json(path, "label run", "prelabel label", "label again")


__all__ = ["Labelled", "label"]
