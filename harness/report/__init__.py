"""Reports: metrics.json (machine-readable, schema in harness/schemas) and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import Problem, UserError
from harness.records import LabelRecord, RunManifest
from harness.report.markdown import render_markdown


def write_reports(run_dir: Path, manifest: RunManifest, metrics: dict[str, Any]) -> None:
    from harness.pipeline import write_json

    write_json(run_dir / "metrics.json", metrics)
    text = render_markdown(manifest, metrics)
    tmp = run_dir / "report.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(run_dir / "report.md")


def load_run(run_dir: Path) -> tuple[RunManifest, list[LabelRecord]]:
    """Read a run directory back; a torn last line (a killed run) is skipped, not fatal."""
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
    records: list[LabelRecord] = []
    problems: list[Problem] = []
    labels_path = run_dir / "labels.jsonl"
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
            records.append(LabelRecord.model_validate_json(line))
        except ValueError as exc:
            if lineno == len(lines):
                continue  # the line a kill interrupted
            problems.append(
                Problem(f"unreadable label record: {str(exc).splitlines()[0]}", labels_path, lineno)
            )
    if problems:
        raise UserError(problems, hint="labels.jsonl was edited or corrupted")
    return manifest, records
