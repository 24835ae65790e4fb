"""Writing a run's reports: metrics.json, report.md and report.html, each atomically."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.core.files import write_json, write_text
from harness.core.records import RunManifest
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.score.json_numbers import finite_tree


def write_reports(run_dir: Path, manifest: RunManifest, metrics: dict[str, Any]) -> None:
    # The last guard: a non-finite number that a statistic let through becomes null with a
    # note naming it (strict JSON, and the reports show no "nan" / "inf"); said on stderr,
    # since it is a bug to report, not a property of the data.
    replaced = finite_tree(metrics)
    if replaced:
        logging.getLogger(__name__).warning(
            "metrics.json: %d non-finite number(s) written as null (a prelabel bug, please "
            "report it): %s",
            len(replaced),
            ", ".join(replaced[:5]),
        )
    write_json(run_dir / "metrics.json", metrics)
    markdown = render_markdown(manifest, metrics)
    if metrics.get("run_status"):  # a run that did not finish says so under the title
        title, rest = markdown.split("\n", 1)
        markdown = f"{title}\n\n> **Run not finished.** {metrics['run_status']['message']}\n{rest}"
    write_text(run_dir / "report.md", markdown)
    write_text(run_dir / "report.html", render_html(manifest, metrics))
