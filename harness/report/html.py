"""report.html: the whole run in one self-contained page for people to browse and share.

One file, nothing fetched: CSS inline, plots as inline SVG (harness.report.svg), no script
at all, and a Content-Security-Policy that forbids loading anything, so the page opens the
same from a laptop, a CI artifact or an air-gapped share, and gold-set text (which may hold
markup, scripts or `javascript:` links) stays inert: Jinja2 escapes every value
(autoescape on) and the policy would block a script even if one slipped through.

The templates (harness/report/templates) lay the page out; this module gives them number
formatting filters (every estimate with its interval, every figure with its n) and the
plots. Blocks that other stations add (recommendation, confidence sources, recalibration,
cost, disagreements, alt-test, annotator groups, stability) are rendered when present and
skipped when absent; Python reads them with `.get` and the templates with a lenient
Undefined, so a renamed or null key leaves a blank cell rather than a failed run. Blocks
of a shape this module does not know are shown as generic tables (`table_of`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader
from markupsafe import Markup, escape

from harness.core.money import usd
from harness.core.records import RunManifest
from harness.report import leaderboard_notes, svg
from harness.report.juries_md import jury_notes, share_iv
from harness.report.markdown_format import alpha_band, kappa_band

MAX_PAIR_ROWS = 15  # annotator pairs listed one by one; a crowd gets a summary line


def render_html(manifest: RunManifest, metrics: dict[str, Any]) -> str:
    gold_sets = metrics.get("gold_sets") or []
    top_rec = metrics.get("recommendation")
    recs = {gs.get("id"): gs.get("recommendation") for gs in gold_sets}
    # The top-level recommendation names its gold set: shown there unless that gold set has
    # its own; one naming no listed gold set is shown above them all.
    placed = isinstance(top_rec, Mapping) and str(top_rec.get("gold_set")) in recs
    if placed and not recs.get(top_rec["gold_set"]):
        recs[top_rec["gold_set"]] = top_rec
    template = _env().get_template("report.html.j2")
    return template.render(
        m=metrics,
        run=manifest.model_dump(mode="json"),
        level=round(float((metrics.get("bootstrap") or {}).get("level", 0.95)) * 100),
        recs=recs,
        top_rec=None if placed else top_rec,
        jury_notes=jury_notes,
        share_iv=share_iv,
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
        num=num,
        iv=iv,
        usd=usd,
        pct=pct,
        anchor=anchor,
        scalars=scalars,
        show=show,
        params=params,
        ticks=code_ticks,
        table_of=table_of,
    )
    env.globals.update(
        by_kappa=ranked,
        kappa_band=kappa_band,
        alpha_band=alpha_band,
        pair_summary=pair_summary,
        is_mapping=lambda x: isinstance(x, Mapping),
        plot_reliability=plot_reliability,
        plot_risk=plot_risk,
        plot_confusion=plot_confusion,
        plot_intervals=plot_intervals,
        pareto=pareto,
        constraint_head=constraint_head,
        max_pair_rows=MAX_PAIR_ROWS,
        notes=leaderboard_notes,
    )
    return env


def ranked(setups: Any) -> list[Mapping[str, Any]]:
    """Setups best first by kappa, a missing kappa last: markdown_format.by_kappa's order,
    tolerant of a block without a kappa interval."""
    blocks = [b for b in setups or [] if isinstance(b, Mapping)]
    return sorted(
        blocks, key=lambda b: -(_value(b, "kappa") if _value(b, "kappa") is not None else -9)
    )


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
    if isinstance(value, Mapping) and "value" in value:  # a rate or a value with its n
        n = next((value[k] for k in ("n", "n_items", "n_pairs") if k in value), None)
        return f"{show(value['value'])}" + (f" (n={n})" if n is not None else "")
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {show(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(show(v)) for v in value) or "–"
    return str(value)


def table_of(value: Any) -> dict[str, Any] | None:
    """A block whose shape the report does not know (annotator groups, stability...) as a
    table: a list of objects one row each, an object one row per key; None when empty."""
    if isinstance(value, Mapping):
        rows = [[k, v] for k, v in scalars(value)]
        return {"columns": ["", ""], "rows": rows} if rows else None
    if not isinstance(value, (list, tuple)) or not value:
        return None
    items = [v for v in value if isinstance(v, Mapping)]
    columns = list(dict.fromkeys(k for item in items for k in item))
    rows = [[show(item.get(c)) for c in columns] for item in items]
    return {"columns": [c.replace("_", " ") for c in columns], "rows": rows} if rows else None


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


def params(d: Any) -> str:
    """A fitted recalibration map in a few words: its scalars; long lists (isotonic
    breakpoints) by their length only."""
    if not isinstance(d, Mapping):
        return "–"
    shown = []
    for k, v in d.items():
        if k in ("method", "note", "n") or v is None:
            continue
        if isinstance(v, (list, tuple)):
            shown.append(f"{len(v)} {k} values")
        elif _is_num(v) and not isinstance(v, bool):
            shown.append(f"{k} = {v:.3g}")
        else:
            shown.append(f"{k}: {show(v)}")
    return ", ".join(shown) or "–"


CONSTRAINT_HEADS = {
    "min_kappa_low": "kappa low ≥ {}",
    "max_ece": "ECE ≤ {}",
    "min_auto_accept_share": "auto-accept share ≥ {}",
    "max_cost_per_1k_usd": "$ / 1k items ≤ {}",
    "min_coverage": "coverage ≥ {}",
}


def constraint_head(name: str, value: Any) -> str:
    if str(name).endswith("_usd"):
        shown = usd(value)
    else:
        shown = f"{value:g}" if _is_num(value) else show(value)
    return CONSTRAINT_HEADS.get(name, str(name).replace("_", " ") + " {}").format(shown)


def code_ticks(text: Any) -> Markup:
    """Text written for report.md names setups in backticks: escaped first, then those
    spans (which can hold no markup any more) become <code>."""
    if text is None or not isinstance(text, str):
        return Markup("")
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def pair_summary(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Many annotator pairs (a crowd): the median and quartiles of the usable ones."""
    usable = sorted(
        p["kappa"] for p in pairs if (p.get("n") or 0) >= 10 and _is_num(p.get("kappa"))
    )
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


def _value(entry: Mapping[str, Any], key: str) -> float | None:
    v = entry.get(key)
    if isinstance(v, Mapping):
        v = v.get("estimate")
    return float(v) if _is_num(v) else None


def pareto(gs: Mapping[str, Any], rec: Any) -> dict[str, Any] | None:
    """Points for the quality-cost plot: the recommendation's Pareto rows when there are
    some (quality = kappa, cost per 1,000 items: hybrid, or LLM only when human costs are
    not configured), else the setups' kappa and LLM cost, with the front computed here."""
    entries = rec.get("pareto") if isinstance(rec, Mapping) else None
    points, x_label = [], "LLM USD per 1,000 items"
    if entries:
        rows = [e for e in entries if isinstance(e, Mapping)]
        if rows and rows[0].get("cost_basis") == "hybrid":
            x_label = "hybrid USD per 1,000 items"
        points = [
            {
                "label": e.get("setup"),
                "x": _value(e, "cost"),
                "y": _value(e, "quality"),
                "on_front": bool(e.get("on_front")),
            }
            for e in rows
        ]
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
            p["on_front"] = (
                p["x"] is not None
                and p["y"] is not None
                and not any(
                    q is not p
                    and q["x"] is not None
                    and q["y"] is not None
                    and q["x"] <= p["x"]
                    and q["y"] >= p["y"]
                    and (q["x"] < p["x"] or q["y"] > p["y"])
                    for q in points
                )
            )
    drawn = [p for p in points if p["x"] is not None and p["y"] is not None]
    if not drawn:
        return None
    left_out = len(points) - len(drawn)
    note = f"{left_out} setup(s) with an unknown cost or kappa not drawn" if left_out else None
    return {
        # The recommendation's front also weighs latency, which the plot does not show:
        # joining its points would draw a front that looks wrong in two dimensions.
        "svg": svg.pareto_plot(drawn, x_label, "kappa", note, join=not entries),
        "from_recommendation": bool(entries),
        "left_out": left_out,
    }
