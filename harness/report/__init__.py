"""Reports: metrics.json (machine-readable, schema in harness/schemas), report.md (for pull
requests) and report.html (one self-contained page to browse and share)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.errors import Problem, UserError
from harness.records import LabelRecord, RunManifest


def write_reports(run_dir: Path, manifest: RunManifest, metrics: dict[str, Any]) -> None:
    # Imported here, not at the top: scoring modules import harness.report.markdown_format,
    # which runs this package's init first; if the init imported the renderers (which import
    # scoring modules for their markdown helpers), that would be an import cycle.
    from harness.json_numbers import finite_tree
    from harness.pipeline import write_json
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown

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
    _write_text(run_dir / "report.md", markdown)
    _write_text(run_dir / "report.html", render_html(manifest, metrics))


def _write_text(path: Path, text: str) -> None:
    """Atomically (temp file + rename): a reader or a browser never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_run(run_dir: Path) -> tuple[RunManifest, list[LabelRecord]]:
    """Read a run directory back; a torn last line (a killed run) is skipped, not fatal."""
    manifest = read_manifest(run_dir)
    return manifest, [record for _, record in read_labels(run_dir / "labels.jsonl")]


def read_manifest(run_dir: Path) -> RunManifest:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise UserError.at(
            "not a run directory (no manifest.json)",
            file=run_dir,
            hint="pass a folder under runs/ written by `prelabel run`",
        )
    try:
        manifest = RunManifest.model_validate_json(manifest_path.read_bytes())
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UserError.at(
            f"unreadable manifest: {str(exc).splitlines()[0]}",
            file=manifest_path,
            hint="manifest.json was edited, truncated, or written by another prelabel version",
        ) from None
    return manifest


def read_labels(labels_path: Path) -> list[tuple[str, LabelRecord]]:
    """Each whole line of labels.jsonl with its record; a torn last line is skipped."""
    records: list[tuple[str, LabelRecord]] = []
    problems: list[Problem] = []
    try:
        text = labels_path.read_text(encoding="utf-8") if labels_path.exists() else ""
    except UnicodeDecodeError as exc:
        raise UserError.at(
            f"labels.jsonl is not UTF-8 (byte {exc.start})",
            file=labels_path,
            hint="labels.jsonl was edited or corrupted",
        ) from None
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((line, LabelRecord.model_validate_json(line)))
        except ValueError as exc:
            if lineno == len(lines):
                continue  # the line a kill interrupted
            problems.append(
                Problem(f"unreadable label record: {str(exc).splitlines()[0]}", labels_path, lineno)
            )
    if problems:
        raise UserError(problems, hint="labels.jsonl was edited or corrupted")
    return records
