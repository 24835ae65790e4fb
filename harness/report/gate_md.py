"""The gate's outputs: a Markdown summary fit for a pull-request comment (verdict first,
then the changes with their intervals, then the flipped items with their text) and a
JUnit XML file that CI systems show as test results."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.core.files import write_bytes
from harness.core.money import usd
from harness.report.markdown_format import fmt, fmt_iv, table

HEADLINE = {
    "pass": "PASS: no regression beyond noise and tolerance",
    "warn": "PASS with warnings: a drop larger than the tolerance cannot be ruled out",
    "fail": "FAIL: a regression beyond noise and tolerance",
    "changed": "FAIL: the baseline is not comparable (a model or gold set changed)",
    "new": "PASS: only new setups, nothing to compare",
    "removed": "FAIL: setups or gold sets of the baseline are missing from this run",
}
# `prelabel compare` shows the same table but decides nothing: its heading describes what
# changed from run A to run B, never a pass or a fail (its exit code is 0 whenever it could
# compare), and its rows read "worse" where a gate would read "fail".
COMPARE_HEADLINE = {
    "pass": "no change beyond noise and tolerance from run A to run B",
    "warn": "a drop larger than the tolerance cannot be ruled out from run A to run B",
    "fail": "run B is worse than run A beyond noise and tolerance",
    "changed": "not comparable: a model or gold set changed from run A to run B",
    "new": "only setups that run A does not have, nothing to compare",
    "removed": "setups or gold sets of run A are missing from run B",
}
COMPARE_VERDICT = {"pass": "no change", "warn": "possible drop", "fail": "worse"}
MAX_FLIPS_SHOWN = 30  # a PR comment must stay readable; the JSON has them all


def _cell(text: Any, limit: int = 160) -> str:
    """Item text in a table cell: one line, pipes escaped, long text cut."""
    s = " ".join(str(text).split()) if text is not None else ""
    s = s.replace("|", "\\|").replace("<", "&lt;")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _change(m: dict[str, Any]) -> str:
    return fmt_iv(m["change"], bracket="always", signed=True)


def _rate(rate: dict[str, Any], key: str) -> str:
    """A gated rate's figure: cost per item in dollars, a failure rate as a share."""
    return usd(rate[key]) if rate["metric"].startswith("cost_usd") else fmt(rate[key], 4)


def summary_markdown(result: dict[str, Any], compare: bool = False) -> str:
    """The gate's verdict and its evidence; with `compare`, the same evidence headed by what
    changed from run A to run B (`prelabel compare`), with no verdict."""
    verdict = result["verdict"]
    if compare:
        lines = [f"## prelabel compare: {COMPARE_HEADLINE.get(verdict, verdict)}", ""]
        lines.append(
            f"Run A `{result.get('baseline_run')}`, run B `{result.get('candidate_run')}`. "
            "Changes are B minus A on the same gold items, with 95% paired bootstrap "
            "intervals; a drop is reported when the interval of the drop excludes 0 and the "
            "estimated drop is larger than the tolerance (`gate:` in run B's config), or the "
            "lower bound is under its floor; a possible drop when a drop larger than the "
            "tolerance cannot be ruled out. A comparison informs: `prelabel gate` decides."
        )
    else:
        lines = [f"## prelabel gate: {HEADLINE.get(verdict, verdict)}", ""]
        lines.append(
            f"Baseline run `{result.get('baseline_run')}`, this run "
            f"`{result.get('candidate_run')}`. Changes are candidate minus baseline on the "
            "same gold items, with 95% paired bootstrap intervals; a metric fails when the "
            "interval of its drop excludes 0 and the estimated drop is larger than its "
            "tolerance, or its lower bound is under its floor; it warns when a drop larger "
            "than the tolerance cannot be ruled out."
        )
    lines.append("")
    names = COMPARE_VERDICT if compare else {}
    rows = []
    for r in result["rows"]:
        if "metrics" not in r:
            rows.append(
                [
                    r["setup"],
                    r.get("gold_set", ""),
                    names.get(r["verdict"], r["verdict"]),
                    "",
                    "",
                    "",
                    r["reason"],
                ]
            )
            continue
        for m in r["metrics"]:
            rows.append(
                [
                    r["setup"],
                    r["gold_set"],
                    names.get(m["verdict"], m["verdict"]),
                    m["metric"],
                    f"{fmt(m['baseline'])} -> {fmt(m['candidate'])}",
                    _change(m),
                    f"n={m['n']}; tolerance {m['tolerance']}"
                    + (f", floor {m['floor']}" if m["floor"] is not None else "")
                    + ("; " + "; ".join(m["reasons"]) if m["reasons"] else ""),
                ]
            )
        for rate in r["rates"]:
            rows.append(
                [
                    r["setup"],
                    r["gold_set"],
                    names.get(rate["verdict"], rate["verdict"]),
                    rate["metric"],
                    f"{_rate(rate, 'baseline')} -> {_rate(rate, 'candidate')}",
                    "",
                    f"n={r['n']}; limit {_rate(rate, 'limit')}",
                ]
            )
    head = "finding" if compare else "verdict"
    lines.append(
        table(["setup", "gold set", head, "metric", "value", "change [95% CI]", "notes"], rows)
    )
    for r in result["rows"]:
        flips = r.get("flips")
        if not flips or not flips["n"]:
            continue
        lines += [
            "",
            f"### Flipped items: {r['setup']} on {r['gold_set']}",
            "",
            f"{flips['n']} of {r['n']} items changed label: {flips['broken']} became wrong, "
            f"{flips['fixed']} became right, {flips['changed']} changed between wrong labels.",
            "",
        ]
        shown = flips["items"][:MAX_FLIPS_SHOWN]
        lines += [
            table(
                ["item", "kind", "reference", "baseline", "candidate", "text"],
                [
                    [
                        f["item"],
                        f["kind"],
                        f["reference"],
                        f["baseline"],
                        f["candidate"],
                        _cell(f["text"]),
                    ]
                    for f in shown
                ],
            )
        ]
        if len(flips["items"]) > len(shown):
            lines.append(f"\n({len(flips['items']) - len(shown)} more in the gate's JSON output)")
    return "\n".join(lines) + "\n"


def write_junit(result: dict[str, Any], path: Path) -> None:
    """One test case per gated figure; `fail` and `changed` are failures, `warn` passes
    with the warning in system-out (JUnit has no warning state)."""
    suite = ET.Element("testsuite", name="prelabel gate")
    n = failures = 0
    for r in result["rows"]:
        figures = r.get("metrics", []) + r.get("rates", [])
        if not figures:
            figures = [{"metric": "comparable", "verdict": r["verdict"], "reason": r.get("reason")}]
        for f in figures:
            n += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{r['setup']}.{r.get('gold_set', '')}".rstrip("."),
                name=f["metric"],
            )
            reason = "; ".join(f.get("reasons", [])) or f.get("reason") or ""
            if f["verdict"] in ("fail", "changed", "removed"):
                failures += 1
                ET.SubElement(case, "failure", message=reason or f["verdict"]).text = reason
            elif reason:
                ET.SubElement(case, "system-out").text = f"{f['verdict']}: {reason}"
    suite.set("tests", str(n))
    suite.set("failures", str(failures))
    write_bytes(path, ET.tostring(suite, encoding="utf-8", xml_declaration=True))
