"""Label Studio in and out: import a gold set from an export, export a review queue as
tasks with predictions, and audit the reviews that come back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import fail, out
from harness.core.errors import UserError
from harness.core.files import write_text
from harness.report.markdown_format import fmt_iv

ls_app = typer.Typer(no_args_is_help=True, help="Label Studio import and export.")

FromName = Annotated[str | None, typer.Option(help="the control's name in the labeling config")]
LabelingConfig = Annotated[
    Path | None, typer.Option(help="the project's labeling config XML (names the control)")
]


def _names(labeling_config: Path | None, from_name: str | None) -> dict:
    from harness.deploy.labelstudio import config_names

    if labeling_config is None:
        return {}
    try:
        return config_names(labeling_config.read_text(encoding="utf-8"), from_name)
    except OSError as exc:
        raise UserError.at(f"cannot read: {exc.strerror}", file=labeling_config) from None


@ls_app.command("import")
def ls_import(
    export: Annotated[Path, typer.Argument(help="Label Studio JSON export")],
    output: Annotated[Path, typer.Option("--output", "-o", help="gold set JSONL to write")],
    config: Annotated[
        Path | None,
        typer.Option(
            help="the experiment YAML the gold set is for: its task.type and labels decide "
            "how the annotations are read (required)"
        ),
    ] = None,
    from_name: FromName = None,
    text_key: Annotated[str | None, typer.Option(help="data key holding the text")] = None,
    labeling_config: LabelingConfig = None,
) -> None:
    """A Label Studio export with several annotations per task -> a prelabel gold set."""
    from harness.config import load_experiment
    from harness.deploy.labelstudio import import_export, to_jsonl

    try:
        if config is None:  # checked here, not by typer: its message cannot say what to pass
            raise UserError.at(
                "missing --config: the experiment whose task type and labels the gold set is for",
                file=export,
                hint=f"pass the config you will run on this gold set, e.g. `prelabel "
                f"labelstudio import {export} --config configs/demo.yaml -o {output}`",
            )
        exp = load_experiment(config).experiment
        names = _names(labeling_config, from_name)
        rows = import_export(
            export,
            exp.task.type,
            exp.task.label_names,
            from_name=names.get("from_name", from_name),
            text_key=text_key or names.get("text_key"),
        )
    except UserError as exc:
        fail(exc)
    write_text(output, to_jsonl(rows, source=str(export)))
    skipped = getattr(rows, "skipped", {}) or {}
    extra = f"; skipped {dict(skipped)}" if skipped else ""
    out.print(f"{len(rows)} items -> {output}{extra}", highlight=False)


@ls_app.command("export")
def ls_export(
    label_run: Annotated[Path, typer.Argument(help="a folder written by `prelabel label`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="tasks JSON to import")],
    labeling_config: LabelingConfig = None,
    from_name: Annotated[str, typer.Option(help="control name")] = "label",
    to_name: Annotated[str | None, typer.Option(help="object name [the text]")] = None,
    control_type: Annotated[str, typer.Option(help="choices|rating|taxonomy|pairwise")] = "choices",
    text_key: Annotated[str, typer.Option(help="data key of the text")] = "text",
) -> None:
    """The review queue as Label Studio tasks; blind items carry no prediction."""
    try:
        names = _names(labeling_config, from_name if labeling_config else None)
        tasks = _review_tasks(label_run, names, from_name, to_name, control_type, text_key)
    except UserError as exc:
        fail(exc)
    output.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    blind = sum(1 for t in tasks if not t.get("predictions"))
    out.print(f"{len(tasks)} tasks ({blind} blind) -> {output}", highlight=False)


Url = Annotated[str, typer.Option(help="the Label Studio server, e.g. http://localhost:8080")]
Project = Annotated[int, typer.Option(help="the project's number (/projects/ID in its address)")]


@ls_app.command("config")
def ls_config(
    config: Annotated[Path, typer.Argument(help="the experiment YAML")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="XML file [stdout]")] = None,
) -> None:
    """The labeling config for the experiment's task: paste it into a new project."""
    from harness.config import load_experiment
    from harness.deploy.labelstudio_server import labeling_config

    try:
        task = load_experiment(config).experiment.task
        xml = labeling_config(task.type, task.label_names)
    except UserError as exc:
        fail(exc)
    if output is None:
        typer.echo(xml, nl=False)
    else:
        write_text(output, xml)
        out.print(f"labeling config -> {output}", highlight=False)


@ls_app.command("push")
def ls_push(
    label_run: Annotated[Path, typer.Argument(help="a folder written by `prelabel label`")],
    url: Url,
    project: Project,
    page_size: Annotated[int, typer.Option(help="tasks per request")] = 100,
) -> None:
    """Send the review tasks (pre-labels as predictions) to a project; a rerun adds none twice.
    The API key is read from LABEL_STUDIO_API_KEY."""
    from harness.deploy.labelstudio import config_names
    from harness.deploy.labelstudio_server import project_config, push_tasks

    try:
        names = config_names(project_config(url, project))
        tasks = _review_tasks(label_run, names, "label", None, "choices", "text")
        sent = push_tasks(url, project, tasks, label_run.name, page_size=page_size)
    except UserError as exc:
        fail(exc)
    out.print(
        f"{sent['sent']} tasks sent ({sent['predictions']} with predictions), "
        f"{sent['skipped']} already in project {project}",
        highlight=False,
    )


@ls_app.command("pull")
def ls_pull(
    url: Url,
    project: Project,
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    config: Annotated[
        Path | None,
        typer.Option(
            help="write a gold set for this experiment (as `labelstudio import` does) instead "
            "of the export for `prelabel audit --reviews`"
        ),
    ] = None,
    all_tasks: Annotated[bool, typer.Option(help="export unannotated tasks too")] = False,
) -> None:
    """Fetch the project's annotations: the JSON export (reviews for `prelabel audit`), or
    with --config a gold set. The API key is read from LABEL_STUDIO_API_KEY."""
    from harness.deploy.labelstudio_server import pull_export

    try:
        export = pull_export(url, project, all_tasks=all_tasks)
    except UserError as exc:
        fail(exc)
    if config is None:
        write_text(output, export.decode("utf-8"))
        n = len(json.loads(export))
        out.print(f"{n} tasks -> {output}", highlight=False)
        return
    # The gold set is read from the export file, by the same code as an offline import.
    raw = output.with_name(output.name + ".export.json")
    write_text(raw, export.decode("utf-8"))
    out.print(f"export -> {raw}", highlight=False)
    ls_import(raw, output, config)


def _review_tasks(label_run: Path, names: dict, from_name, to_name, control_type, text_key):
    """A label run's review queue as Label Studio tasks (export and push send the same)."""
    from harness.config import load_experiment
    from harness.deploy.labelstudio import export_review_tasks

    try:
        manifest = json.loads((label_run / "manifest.json").read_text(encoding="utf-8"))
        exp = load_experiment(manifest["config_path"]).experiment
        queue = [
            json.loads(x)
            for x in (label_run / "review_queue.jsonl").read_text(encoding="utf-8").splitlines()
        ]
    except FileNotFoundError as exc:
        raise UserError.at(
            "not a label run", file=Path(exc.filename), hint="run `prelabel label`"
        ) from None
    return export_review_tasks(
        queue,
        from_name=names.get("from_name", from_name),
        to_name=names.get("to_name", to_name),
        control_type=names.get("control_type", control_type),
        text_key=names.get("text_key", text_key),
        setup_id=manifest["setup"],
        labels=exp.task.label_names,
    )


def audit(
    label_run: Annotated[Path, typer.Argument(help="a folder written by `prelabel label`")],
    reviews: Annotated[Path, typer.Option(help="Label Studio export of the reviewed tasks")],
    from_name: FromName = None,
    evaluation: Annotated[
        Path | None,
        typer.Option(
            help="the evaluation run the label run used, for its promised error "
            "[its folder beside the label run]"
        ),
    ] = None,
) -> None:
    """Acceptance and correction by class, realised error of auto-accepted labels, drift."""
    from harness.deploy.audit import run_audit

    try:
        a = run_audit(label_run, reviews, from_name, evaluation)
    except UserError as exc:
        fail(exc)

    def p(x: dict) -> str:
        if x["estimate"] is None:
            return f"unknown (n={x['n']})"
        return f"{fmt_iv(x)} (n={x['n']})"

    lines = [
        f"audit of {a['label_run']} (setup {a['setup']}, evaluation {a['evaluation_run']}): "
        f"{a['reviewed_items']} reviewed items",
        f"reviewers kept the pre-label: {p(a['acceptance'])}; corrected: {p(a['correction'])}",
        f"realised error of auto-accepted labels (blind audit): {p(a['realised_error'])}",
    ]
    if a["evaluation"]:
        e = a["evaluation"]
        lines.append(
            f"evaluation promised error <= {e['alpha']} ({e['errors']} of {e['n_accepted']} "
            "wrong on the gold set)"
        )
    drift = {True: "DRIFT: production is worse than the evaluation said", False: "no drift"}
    lines.append(drift.get(a["drift"], "drift: unknown (no blind audit sample reviewed yet)"))
    lines += [f"note: {n}" for n in a["notes"]]
    for c in a["per_class"]:
        lines.append(f"  {c['label']}: kept {p(c['acceptance'])}")
    out.print("\n".join(lines), highlight=False)
    out.print(f"written: {label_run}/audit.json", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(ls_app, name="labelstudio")
    app.command()(audit)
