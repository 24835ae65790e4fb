"""report.html: the whole run in one self-contained page for people to browse and share.

One file, nothing fetched: CSS inline, plots as inline SVG (harness.report.svg), no script
at all, and a Content-Security-Policy that forbids loading anything, so the page opens the
same from a laptop, a CI artifact or an air-gapped share, and gold-set text (which may hold
markup, scripts or `javascript:` links) stays inert: Jinja2 escapes every value
(autoescape on) and the policy would block a script even if one slipped through.

The templates (harness/report/templates) lay the page out; this module gives them number
formatting filters (every estimate with its interval, every figure with its n) and the
plots. Blocks that other stations add (recommendation, confidence sources, recalibration,
cost, disagreements) are rendered when present and skipped when absent, read with `.get`
so a renamed key leaves a blank cell rather than a failed run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader
from markupsafe import Markup

from harness.records import RunManifest
from harness.report import svg
from harness.report.markdown_format import alpha_band, by_kappa, kappa_band

MAX_PAIR_ROWS = 15  # annotator pairs listed one by one; a crowd gets a summary line


def render_html(manifest: RunManifest, metrics: dict[str, Any]) -> str:
    gold_sets = metrics.get("gold_sets") or []
    top_rec = metrics.get("recommendation")
    recs = {gs.get("id"): gs.get("recommendation") for gs in gold_sets}
    # The top-level recommendation names its gold set: shown there unless that gold set has
    # its own; one naming no listed gold set is shown above them all.
    placed = isinstance(top_rec, Mapping) and top_rec.get("gold_set") in recs
    if placed and not recs.get(top_rec["gold_set"]):
        recs[top_rec["gold_set"]] = top_rec
    return _env().get_template("report.html.j2").render(
        m=metrics,
        run=manifest.model_dump(mode="json"),
        level=round(float((metrics.get("bootstrap") or {}).get("level", 0.95)) * 100),
        recs=recs,
        top_rec=None if placed else top_rec,
    )


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=True,  # every value from data is text, never markup
        # A key another station renamed renders as blank, not as a crash after a paid run.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=num, iv=iv, usd=usd, pct=pct, anchor=anchor, scalars=scalars, show=show
    )
    env.globals.update(
        by_kappa=lambda setups: by_kappa([b for b in setups or [] if isinstance(b, Mapping)]),
        kappa_band=kappa_band,
        alpha_band=alpha_band,
        pair_summary=pair_summary,
        is_mapping=lambda x: isinstance(x, Mapping),
        plot_reliability=plot_reliability,
        plot_risk=plot_risk,
        plot_confusion=plot_confusion,
        plot_intervals=plot_intervals,
        pareto=pareto,
        max_pair_rows=MAX_PAIR_ROWS,
    )
    return env


# ---------------------------------------------------------------------------- number filters


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x  # NaN != NaN


def num(x: Any, digits: int = 3) -> str:
    if _is_num(x):
        return f"{x:.{digits}f}"
    return "–" if x is None or not isinstance(x, str) else x


def iv(d: Any, digits: int = 3, show_n: bool = False) -> Markup | str:
    """An estimate with its interval, `0.294 [0.182, 0.409]`, and optionally its n."""
    if not isinstance(d, Mapping) or not _is_num(d.get("estimate")):
        return "–"
    out = f'<span class="est">{d["estimate"]:.{digits}f}</span>'
    if _is_num(d.get("low")) and _is_num(d.get("high")):
        out += f' <span class="ci">[{d["low"]:.{digits}f}, {d["high"]:.{digits}f}]</span>'
    if show_n and _is_num(d.get("n")):
        out += f' <span class="n">n={int(d["n"])}</span>'
    return Markup(out)


def usd(x: Any, digits: int = 4) -> str:
    return f"${x:,.{digits}f}" if _is_num(x) else "unknown"


def pct(x: Any, digits: int = 0) -> str:
    return f"{x:.{digits}%}" if _is_num(x) else "–"


def anchor(*parts: Any) -> str:
    """A fragment id from data (setup ids, gold set ids): only [A-Za-z0-9_-] survive."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]+", "_", str(p)) for p in parts)


def show(value: Any) -> Any:
    """One value of a block of unknown shape, as shown: an interval with its bounds and n,
    a number to about four significant digits, a list joined."""
    if isinstance(value, Mapping) and "estimate" in value:
        return iv(value, show_n=True)
    if value is None or isinstance(value, bool):
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if _is_num(value):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "–"
    return str(value)


def scalars(d: Any) -> list[tuple[str, Any]]:
    """A block of unknown shape as (name, shown value) rows, nested objects flattened one
    level (`per_1k: total`), so a new key shows up without a template change."""
    if not isinstance(d, Mapping):
        return []
    out: list[tuple[str, Any]] = []
    for key, value in d.items():
        name = str(key).replace("_", " ")
        if isinstance(value, Mapping) and "estimate" not in value:
            out += [(f"{name}: {k}", v) for k, v in scalars(value)]
        else:
            out.append((name, show(value)))
    return out


def pair_summary(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Many annotator pairs (a crowd): the median and quartiles of the usable ones."""
    usable = sorted(p["kappa"] for p in pairs if (p.get("n") or 0) >= 10 and _is_num(p.get("kappa")))
    if not usable:
        return f"no pair of the {len(pairs)} shares 10 items"
    q = [usable[(len(usable) * k) // 4] for k in (1, 2, 3)]
    return (
        f"median {q[1]:.3f} (quartiles {q[0]:.3f} to {q[2]:.3f}) over {len(usable)} pairs "
        f"sharing >= 10 items, of {len(pairs)} pairs (all in metrics.json)"
    )


# ------------------------------------------------------------------------------------ plots


def plot_reliability(cal: Any) -> Markup | None:
    if not isinstance(cal, Mapping) or not cal.get("reliability"):
        return None
    return svg.reliability_diagram(cal["reliability"], n=cal.get("n"))


def plot_risk(sel: Any) -> Markup | None:
    if not isinstance(sel, Mapping) or not sel.get("curve"):
        return None
    share = sel.get("auto_accept_share") if sel.get("threshold") is not None else None
    return svg.risk_coverage(sel["curve"], sel.get("target_error"), share, n=sel.get("n"))


def plot_confusion(conf: Any) -> Markup | None:
    if not isinstance(conf, Mapping) or not conf.get("matrix"):
        return None
    return svg.confusion_matrix(conf.get("rows") or [], conf.get("columns") or [], conf["matrix"])


def plot_intervals(
    rows: Sequence[Any], label_key: str, metric: str, x_label: str, reference: Any = None
) -> Markup | None:
    """A forest plot of `metric` (an interval dict per row), e.g. kappa per setup or
    accuracy per slice; rows missing the metric are listed as too few to score."""
    points = []
    for r in rows or []:
        if not isinstance(r, Mapping):
            continue
        d = r.get(metric) if isinstance(r.get(metric), Mapping) else {}
        points.append(
            {
                "label": r.get(label_key),
                "estimate": d.get("estimate"),
                "low": d.get("low"),
                "high": d.get("high"),
                "n": d.get("n", r.get("n", r.get("n_items"))),
            }
        )
    if not points:
        return None
    return svg.interval_chart(points, x_label, reference=reference if _is_num(reference) else None)


QUALITY_KEYS = ("kappa", "quality", "kappa_estimate", "accuracy")


def _value(entry: Mapping[str, Any], key: str) -> float | None:
    v = entry.get(key)
    if isinstance(v, Mapping):
        v = v.get("estimate")
    return float(v) if _is_num(v) else None


def _cost_per_1k(entry: Mapping[str, Any]) -> tuple[float | None, str]:
    """The cost figure of a Pareto entry: a per-1k key if any (its name says which pipeline
    it prices), else a per-item one times 1,000."""
    keys = [k for k in entry if "cost" in k and ("1k" in k or "1000" in k)]
    for k in keys:
        if (v := _value(entry, k)) is not None:
            return v, k.replace("_", " ")
    for k in (k for k in entry if "cost" in k and "item" in k):
        if (v := _value(entry, k)) is not None:
            return v * 1000, "cost per 1,000 items"
    cost = entry.get("cost")
    if isinstance(cost, Mapping):
        return _cost_per_1k(cost)
    return None, ""


def pareto(gs: Mapping[str, Any], rec: Any) -> dict[str, Any] | None:
    """Points for the quality-cost plot: the recommendation's `pareto` list when there is one,
    else the setups' kappa and LLM cost per item, with the front computed here."""
    entries = rec.get("pareto") if isinstance(rec, Mapping) else None
    points, x_label = [], "USD per 1,000 items"
    if entries:
        for e in entries:
            if not isinstance(e, Mapping):
                continue
            quality = next((v for k in QUALITY_KEYS if (v := _value(e, k)) is not None), None)
            cost, name = _cost_per_1k(e)
            x_label = name or x_label
            points.append(
                {"label": e.get("setup"), "x": cost, "y": quality, "on_front": e.get("on_front")}
            )
    else:
        for b in gs.get("setups") or []:
            per_item = (b.get("usage") or {}).get("cost_usd_per_item")
            points.append(
                {
                    "label": b.get("setup"),
                    "x": per_item * 1000 if _is_num(per_item) else None,
                    "y": _value(b, "kappa"),
                }
            )
        for p in points:  # on the front: no other setup at least as good on both, better on one
            p["on_front"] = p["x"] is not None and p["y"] is not None and not any(
                q is not p
                and q["x"] is not None
                and q["y"] is not None
                and q["x"] <= p["x"]
                and q["y"] >= p["y"]
                and (q["x"] < p["x"] or q["y"] > p["y"])
                for q in points
            )
    drawn = [p for p in points if p["x"] is not None and p["y"] is not None]
    if not drawn:
        return None
    left_out = len(points) - len(drawn)
    note = f"{left_out} setup(s) without a known cost are not drawn" if left_out else None
    return {
        "svg": svg.pareto_plot(drawn, x_label, "kappa", note),
        "from_recommendation": bool(entries),
        "left_out": left_out,
    }
