"""The Python API's results (api station): an evaluation run read back as typed objects.

`Evaluation` wraps a run folder (metrics.json, manifest.json, labels.jsonl): the same
numbers the reports show, each estimate with its n and its interval, as a notebook wants
them (`leaderboard`, `recommendation`, `to_pandas()`, and an HTML view in Jupyter).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UserError


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval at `level` over `n` items (low/high None
    where the statistic is undefined on the resamples; estimate None with a `note`)."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    level: float
    note: str | None = None

    @classmethod
    def of(cls, block: dict[str, Any] | None) -> Interval | None:
        if not isinstance(block, dict) or "estimate" not in block:
            return None
        return cls(
            block.get("estimate"),
            block.get("low"),
            block.get("high"),
            int(block.get("n") or 0),
            float(block.get("level") or 0.0),
            block.get("note"),
        )

    def __str__(self) -> str:
        if self.estimate is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.estimate:.3f}"
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class LeaderboardRow:
    """One setup on one gold set, as the report's leaderboard shows it."""

    gold_set: str
    setup: str
    n_items: int
    kappa: Interval | None
    accuracy: Interval | None
    macro_f1: Interval | None
    coverage: float | None
    ece: Interval | None
    cost_per_1k_usd: float | None
    recommended: bool


class Evaluation:
    """A finished evaluation run. `metrics` is metrics.json as a dict, `manifest` the
    manifest.json; `leaderboard` and `recommendation` are read from them."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.manifest = _read(self.run_dir / "manifest.json")
        path = self.run_dir / "metrics.json"
        if not path.exists():
            status = self.manifest.get("status", "unknown")
            raise UserError.at(
                f"run {self.run_dir.name} has no metrics.json (status: {status})",
                file=self.run_dir,
                hint="finish it with `prelabel run CONFIG --resume RUN`, or rebuild the "
                "report of a complete run with `prelabel report RUN`",
            )
        self.metrics: dict[str, Any] = _read(path)
        self.mlflow_run_id: str | None = None  # set when this run was logged to MLflow

    def __repr__(self) -> str:
        pick = (self.recommendation or {}).get("recommended")
        return f"Evaluation({self.run_dir.name!r}, recommended={pick!r})"

    @property
    def recommendation(self) -> dict[str, Any] | None:
        """The recommendation block of metrics.json: `recommended`, `reason`, the setups
        compared and their constraints (None for a task type without one)."""
        return self.metrics.get("recommendation")

    @property
    def leaderboard(self) -> list[LeaderboardRow]:
        """Every setup on every gold set, best kappa (else accuracy) first."""
        pick = (self.recommendation or {}).get("recommended")
        rows = []
        for gs in self.metrics.get("gold_sets", []):
            for s in gs.get("setups", []):
                cal = s.get("calibration") or {}
                cost = ((s.get("cost") or {}).get("llm") or {}).get("per_1k")
                rows.append(
                    LeaderboardRow(
                        gold_set=gs["id"],
                        setup=s["setup"],
                        n_items=int(s.get("n_items") or 0),
                        kappa=Interval.of(s.get("kappa")),
                        accuracy=Interval.of(s.get("accuracy")),
                        macro_f1=Interval.of(s.get("macro_f1")),
                        coverage=(s.get("coverage") or {}).get("value"),
                        ece=Interval.of(cal.get("ece")),
                        cost_per_1k_usd=cost,
                        recommended=s["setup"] == pick,
                    )
                )

        def rank(row: LeaderboardRow) -> tuple:
            main = row.kappa or row.accuracy
            value = main.estimate if main and main.estimate is not None else float("-inf")
            return (row.gold_set, -value, row.setup)

        return sorted(rows, key=rank)

    def compare(self, other: Evaluation) -> dict[str, Any]:
        """Per-setup changes from this run to `other`, with paired intervals and the flipped
        items: what `prelabel compare THIS OTHER --json` writes."""
        from harness.gate.baseline import snapshot
        from harness.gate.regression import compare_snapshots
        from harness.run.store import load_run_context

        base, ctx = load_run_context(self.run_dir), load_run_context(other.run_dir)
        exp = ctx.experiment
        boot = {"n_boot": exp.report.bootstrap, "seed": exp.report.seed, "level": exp.report.level}
        texts = {
            g.id: {it.id: " / ".join(str(v) for v in it.fields.values()) for it in g.items}
            for g in ctx.gold_sets
        }
        return compare_snapshots(snapshot(base), snapshot(ctx), exp.gate, boot, texts)

    def to_pandas(self) -> Any:
        """The leaderboard as a pandas DataFrame, one column per figure and bound."""
        try:
            import pandas as pd
        except ImportError:
            raise UserError.at(
                "Evaluation.to_pandas() needs pandas, which is not installed",
                hint="pip install pandas (or use .leaderboard, a list of dataclasses)",
            ) from None
        flat = []
        for row in self.leaderboard:
            out: dict[str, Any] = {}
            for key, value in asdict(row).items():
                if isinstance(value, dict):  # an Interval
                    out[key] = value["estimate"]
                    out[f"{key}_low"], out[f"{key}_high"] = value["low"], value["high"]
                else:
                    out[key] = value
            flat.append(out)
        return pd.DataFrame(flat)

    def _repr_html_(self) -> str:
        head = ["gold set", "setup", "n", "kappa", "accuracy", "macro-F1", "coverage", "ECE"]
        level = self.metrics.get("bootstrap", {}).get("level", 0.95)
        cells = []
        for r in self.leaderboard:
            cov = "–" if r.coverage is None else f"{r.coverage:.3f}"
            values = [r.gold_set, r.setup + (" ★" if r.recommended else ""), str(r.n_items)]
            values += [str(x) if x else "–" for x in (r.kappa, r.accuracy, r.macro_f1)]
            values += [cov, str(r.ece) if r.ece else "–"]
            cells.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>")
        rec = self.recommendation or {}
        pick = rec.get("recommended")
        note = html.escape(f"recommended: {pick or 'none'}. {rec.get('reason', '')}")
        return (
            f"<div><b>{html.escape(self.run_dir.name)}</b> "
            f"(intervals: {level:.0%} bootstrap)<table><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join(cells)
            + f"</tbody></table><p>{note}</p></div>"
        )


def _read(
    path: Path,
    kind: str = "run",
    command: str = "prelabel run",
    redo: str = "the run folder is damaged; rerun it",
) -> dict[str, Any]:
    """A JSON file of a run folder (an evaluation run; `kind="label run"` for a label run)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError.at(
            f"not a {kind} folder: this file is missing",
            file=path,
            hint=f"name a folder under runs/ that `{command}` wrote",
        ) from None
    except ValueError as exc:
        raise UserError.at(f"not valid JSON: {exc}", file=path, hint=redo) from None
