"""Plots for the HTML report as inline SVG: small pure functions, metrics in, markup out.

Inline SVG keeps report.html one self-contained file (no plotting library, no images to ship,
nothing fetched), scales sharply when zoomed or printed, and its text can be searched and
copied. Every piece of text that comes from data (labels, setup ids, slice values) is escaped
here, because it is inserted into the page as markup. No `xmlns` attribute: inline SVG in
HTML does not need one, and the report must not contain a single URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from harness.core.money import usd
from harness.report.markdown_format import fmt_iv

INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
BLUE, ORANGE, GREEN, GREY = "#2563eb", "#c2410c", "#15803d", "#9ca3af"
Scale = Callable[[float], float]


def _e(value: Any) -> str:
    return str(escape(str(value)))


def _f(x: float) -> str:
    """Coordinates with one decimal: exact enough on screen, short in the file."""
    return f"{x:.1f}"


def _short(text: Any, limit: int = 18) -> str:
    """Long labels are cut in the plot (the full text is in the tooltip and the tables)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _svg(width: float, height: float, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg class="plot" viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" '
        f'height="{_f(height)}" role="img" aria-label="{_e(label)}">'
        f"<title>{_e(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: Any, cls: str = "", anchor: str = "start", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{klass}{extra}>{_e(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, color: str = GRID, **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    return (
        f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{color}"{extra}/>'
    )


def _linear(d0: float, d1: float, r0: float, r1: float) -> Scale:
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (v - d0) / span * (r1 - r0)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi - 1e-9:
        ticks.append(round(t, 10))
    return ticks


def _axes(
    sx: Scale,
    sy: Scale,
    xticks: Sequence[float],
    yticks: Sequence[float],
    x_label: str,
    y_label: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    xfmt: Callable[[float], str] | None = None,
) -> list[str]:
    """Grid lines, tick labels and axis titles of an x-y plot (`xfmt`: x ticks, else `fmt`)."""
    x0, x1, y0, y1 = sx(xticks[0]), sx(xticks[-1]), sy(yticks[0]), sy(yticks[-1])
    out = []
    for t in xticks:
        out.append(_line(sx(t), y0, sx(t), y1))
        out.append(_text(sx(t), y0 + 14, (xfmt or fmt)(t), "tick", "middle"))
    for t in yticks:
        out.append(_line(x0, sy(t), x1, sy(t)))
        out.append(_text(x0 - 5, sy(t) + 3.5, fmt(t), "tick", "end"))
    out.append(_text((x0 + x1) / 2, y0 + 32, x_label, "axis", "middle"))
    ym = (y0 + y1) / 2
    out.append(_text(12, ym, y_label, "axis", "middle", transform=f"rotate(-90 12 {_f(ym)})"))
    return out


def reliability_diagram(bins: Sequence[dict[str, Any]], n: int | None = None) -> Markup:
    """Accuracy against mean confidence per equal-width bin; the diagonal is perfect
    calibration, and each bar carries its item count (a bin of 2 items says little)."""
    w, h, left, right, top, bottom = 340, 300, 48, 12, 16, 46
    sx, sy = _linear(0, 1, left, w - right), _linear(0, 1, h - bottom, top)
    ticks = [0, 0.25, 0.5, 0.75, 1]
    out = _axes(sx, sy, ticks, ticks, "confidence", "accuracy in bin")
    for b in bins:
        low, high, acc, count = b.get("low"), b.get("high"), b.get("accuracy"), b.get("n")
        if low is None or high is None or acc is None:
            continue
        x0, x1, y = sx(low) + 1, sx(high) - 1, sy(acc)
        tip = (
            f"confidence {low:.2f}–{high:.2f}: {count} items, accuracy {acc:.3f}, "
            f"mean confidence {_num(b.get('mean_confidence'))}"
        )
        out.append(
            f'<rect x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0, 1))}" '
            f'height="{_f(sy(0) - y)}" fill="{BLUE}" fill-opacity="0.25" stroke="{BLUE}">'
            f"<title>{_e(tip)}</title></rect>"
        )
        if b.get("mean_confidence") is not None:
            out.append(
                f'<circle cx="{_f(sx(b["mean_confidence"]))}" cy="{_f(y)}" r="3" fill="{BLUE}"/>'
            )
        out.append(_text((x0 + x1) / 2, y - 4, count, "count", "middle"))
    out.append(_line(sx(0), sy(0), sx(1), sy(1), MUTED, stroke_dasharray="4 3"))
    out.append(_text(sx(0.04), sy(0.93), "perfect calibration: on the diagonal", "note"))
    label = "Reliability diagram" + (f" (n={n})" if n is not None else "")
    return _svg(w, h, label, out)


def risk_coverage(
    curve: Sequence[dict[str, Any]],
    target_error: float | None = None,
    accept_share: float | None = None,
    n: int | None = None,
) -> Markup:
    """Error rate among the items kept (most confident first) against the share kept; the
    dashed line is the target error, the vertical one the auto-accepted share if any."""
    w, h, left, right, top, bottom = 340, 300, 48, 12, 16, 46
    points = [
        (p["coverage"], p["risk"])
        for p in curve
        if p.get("coverage") is not None and p.get("risk") is not None
    ]
    top_risk = max([r for _, r in points] + [target_error or 0, 0.05])
    yticks = nice_ticks(0, min(1.0, top_risk * 1.1), 5)
    sx, sy = _linear(0, 1, left, w - right), _linear(0, yticks[-1], h - bottom, top)
    out = _axes(sx, sy, [0, 0.25, 0.5, 0.75, 1], yticks, "coverage (share kept)", "error rate")
    if points:
        path = " ".join(f"{_f(sx(c))},{_f(sy(r))}" for c, r in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
        out += [
            f'<circle cx="{_f(sx(c))}" cy="{_f(sy(r))}" r="2" fill="{BLUE}"/>' for c, r in points
        ]
    if target_error is not None:
        y = sy(target_error)
        out.append(_line(sx(0), y, sx(1), y, ORANGE, stroke_dasharray="5 3", stroke_width="1.5"))
        out.append(_text(sx(1) - 2, y - 4, f"target error {target_error:.0%}", "note", "end"))
    if accept_share:
        x = sx(accept_share)
        out.append(_line(x, sy(0), x, sy(yticks[-1]), GREEN, stroke_width="1.5"))
        out.append(_text(x + 3, sy(yticks[-1]) + 10, f"auto-accept {accept_share:.0%}", "note"))
    label = "Risk-coverage curve" + (f" (n={n})" if n is not None else "")
    return _svg(w, h, label, out)


def _blend(share: float) -> str:
    """White to dark blue by the share of the row, so classes of any size compare."""
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * share) for c in (29, 78, 216))
    return f"#{r:02x}{g:02x}{b:02x}"


def confusion_matrix(
    rows: Sequence[str], columns: Sequence[str], matrix: Sequence[Sequence[int]]
) -> Markup:
    """Counts per (reference, predicted) pair, shaded by the share of the reference row."""
    cell = max(26, min(46, 460 / max(len(columns), 1)))
    left = 18 + 6.6 * min(max((len(str(r)) for r in rows), default=4), 16)
    top = 30 + 5.2 * min(max((len(str(c)) for c in columns), default=4), 16)
    w, h = left + cell * len(columns) + 8, top + cell * len(rows) + 8
    out = [_text(left + cell * len(columns) / 2, 12, "predicted", "axis", "middle")]
    for j, col in enumerate(columns):
        x, y = left + cell * (j + 0.5), top - 6
        out.append(
            _text(x, y, _short(col, 16), "tick", "start", transform=f"rotate(-40 {_f(x)} {_f(y)})")
        )
    ym = top + cell * len(rows) / 2
    out.append(_text(10, ym, "reference", "axis", "middle", transform=f"rotate(-90 10 {_f(ym)})"))
    for i, (name, counts) in enumerate(zip(rows, matrix, strict=False)):
        total = sum(counts) or 1
        y = top + cell * i
        out.append(_text(left - 6, y + cell / 2 + 4, _short(name, 16), "tick", "end"))
        for j, count in enumerate(counts):
            share = count / total
            x = left + cell * j
            col = columns[j] if j < len(columns) else "?"
            tip = f"reference {name}, predicted {col}: {count} ({share:.0%} of the row)"
            edge = f' stroke="{INK}" stroke-width="1.5"' if j == i else f' stroke="{GRID}"'
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(cell)}" height="{_f(cell)}" '
                f'fill="{_blend(share)}"{edge}><title>{_e(tip)}</title></rect>'
            )
            colour = "#ffffff" if share > 0.55 else INK
            out.append(_text(x + cell / 2, y + cell / 2 + 4, count, "cell", "middle", fill=colour))
    n = sum(sum(r) for r in matrix)
    return _svg(w, h, f"Confusion matrix (n={n}; rows: reference, columns: predicted)", out)


def interval_chart(
    rows: Sequence[dict[str, Any]],
    x_label: str,
    domain: tuple[float, float] | None = None,
    reference: float | None = None,
) -> Markup:
    """One row per group: its estimate and interval whisker, with its n in the label (a
    forest plot). Rows without an estimate (too few items) are listed, not drawn."""
    scored = [r for r in rows if r.get("estimate") is not None]
    if domain is None:
        lows = [r.get("low") if r.get("low") is not None else r["estimate"] for r in scored]
        highs = [r.get("high") if r.get("high") is not None else r["estimate"] for r in scored]
        domain = (min([0.0, *lows]), max([1.0, *highs]))
    ticks = nice_ticks(domain[0], domain[1], 5)
    label_w = 14 + 6.4 * min(max((len(_label_n(r)) for r in rows), default=8), 34)
    row_h, top, w = 24, 10, 560
    h = top + row_h * len(rows) + 40
    sx = _linear(ticks[0], ticks[-1], label_w, w - 150)
    out = []
    for t in ticks:
        out.append(_line(sx(t), top, sx(t), top + row_h * len(rows)))
        out.append(_text(sx(t), top + row_h * len(rows) + 14, f"{t:g}", "tick", "middle"))
    out.append(_text((label_w + w - 150) / 2, h - 6, x_label, "axis", "middle"))
    if reference is not None:
        x = sx(reference)
        out.append(_line(x, top, x, top + row_h * len(rows), MUTED, stroke_dasharray="4 3"))
    for i, r in enumerate(rows):
        y = top + row_h * (i + 0.5)
        out.append(_text(label_w - 8, y + 4, _label_n(r), "tick", "end"))
        est = r.get("estimate")
        if est is None:
            out.append(_text(sx(ticks[0]) + 4, y + 4, r.get("note") or "too few to score", "note"))
            continue
        low = r.get("low") if r.get("low") is not None else est
        high = r.get("high") if r.get("high") is not None else est
        out.append(_line(sx(low), y, sx(high), y, BLUE, stroke_width="2"))
        out += [_line(sx(v), y - 5, sx(v), y + 5, BLUE, stroke_width="2") for v in (low, high)]
        out.append(f'<circle cx="{_f(sx(est))}" cy="{_f(y)}" r="4" fill="{BLUE}"/>')
        out.append(_text(w - 144, y + 4, fmt_iv(r), "value"))
    return _svg(w, h, f"{x_label} with intervals", out)


def _label_n(row: dict[str, Any]) -> str:
    n = row.get("n")
    return _short(row.get("label", ""), 26) + (f" (n={n})" if n is not None else "")


def pareto_plot(
    points: Sequence[dict[str, Any]],
    x_label: str,
    y_label: str,
    note: str | None = None,
    join: bool = True,
) -> Markup:
    """Quality against cost: a setup on the front is not beaten on both by another. Points
    are {"label", "x", "y", "on_front"}; the front is joined left to right."""
    pts = [p for p in points if p.get("x") is not None and p.get("y") is not None]
    w, h, left, right, top, bottom = 560, 300, 56, 150, 16, 46
    xs, ys = [p["x"] for p in pts] or [0.0], [p["y"] for p in pts] or [0.0]
    xticks = nice_ticks(0, max(xs) * 1.1 if max(xs) > 0 else 1.0, 5)
    pad = (max(ys) - min(ys)) * 0.15 or 0.1
    yticks = nice_ticks(min(ys) - pad, max(ys) + pad, 5)
    sx = _linear(xticks[0], xticks[-1], left, w - right)
    sy = _linear(yticks[0], yticks[-1], h - bottom, top)
    # x is dollars: `g` would write a tiny cost as 7e-06
    out = _axes(sx, sy, xticks, yticks, x_label, y_label, xfmt=usd)
    front = sorted((p for p in pts if p.get("on_front")), key=lambda p: p["x"])
    if join and len(front) > 1:
        path = " ".join(f"{_f(sx(p['x']))},{_f(sy(p['y']))}" for p in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="{GREEN}" stroke-width="1.5"/>')
    for p in pts:
        x, y, on = sx(p["x"]), sy(p["y"]), bool(p.get("on_front"))
        tip = f"{p.get('label')}: {y_label} {p['y']:.3f}, {x_label} {usd(p['x'])}" + (
            " (on the front)" if on else " (dominated)"
        )
        fill = GREEN if on else "#ffffff"
        out.append(
            f'<circle cx="{_f(x)}" cy="{_f(y)}" r="5" fill="{fill}" '
            f'stroke="{GREEN if on else GREY}" stroke-width="2"><title>{_e(tip)}</title></circle>'
        )
        out.append(_text(x + 8, y + 4, _short(p.get("label", ""), 22), "tick"))
    if note:
        out.append(_text(left, h - 4, note, "note"))
    return _svg(w, h, f"Pareto plot: {y_label} against {x_label} (n={len(pts)} setups)", out)
