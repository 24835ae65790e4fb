"""`prelabel cache export` and `prelabel cache import`: labels from one machine to another."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import err, fail, out
from harness.core.errors import UserError

CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="label cache [$PRELABEL_CACHE_DIR, else run.cache_dir]"),
]


def register(cache_app: typer.Typer) -> None:
    cache_app.command("export")(cache_export)
    cache_app.command("import")(cache_import)


def cache_export(
    configs: Annotated[
        list[Path], typer.Argument(help="experiment YAML(s) whose labels to export")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="file to write (.jsonl or .jsonl.gz)")
    ],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Write the cached labels of every call the configs make, each with the request its key
    is the hash of, to one file that `prelabel cache import` checks and merges elsewhere."""
    from harness.run.cache import LabelCache
    from harness.run.cache_transfer import export_labels
    from harness.run.pipeline import prepare

    try:
        plans = [prepare(c) for c in configs]
    except UserError as exc:
        fail(exc)
    folder = _folder(cache_dir, plans[0].resolved.experiment.run.cache_dir)
    if not folder.exists():
        fail(UserError.at("no label cache here", file=folder, hint="run the config first"))
    cache = LabelCache(folder)
    try:
        result = export_labels(plans, cache, output)
    finally:
        cache.close()
    out.print(f"exported {result.written} labels to {output}", highlight=False)
    if result.missing:
        err.print(
            f"{result.missing} calls of the config(s) are not in {folder} and were not exported "
            "(run the config first to include them)",
            highlight=False,
        )


def cache_import(
    file: Annotated[Path, typer.Argument(help="a file written by `prelabel cache export`")],
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="[$PRELABEL_CACHE_DIR, else .prelabel-cache]")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="overwrite cached labels that differ from the file's")
    ] = False,
) -> None:
    """Check every entry of an export (each key must be the hash of its request, each reply a
    real answer), then merge it into the cache. Nothing is written if any entry fails; a
    label the cache already holds with another answer is kept unless --replace."""
    from harness.run.cache import LabelCache
    from harness.run.cache_transfer import import_labels, read_export

    try:
        read_export(file)  # every problem before the cache is even opened
    except UserError as exc:
        fail(exc)
    folder = _folder(cache_dir, Path(".prelabel-cache"))
    cache = LabelCache(folder)
    try:
        result = import_labels(file, cache, replace=replace)
    except UserError as exc:
        fail(exc)
    finally:
        cache.close()
    out.print(
        f"imported {file} into {folder}: {result.added} added, {result.identical} already "
        f"there, {result.replaced} replaced, {len(result.kept)} kept",
        highlight=False,
    )
    if result.kept:
        err.print(
            f"{len(result.kept)} labels in the cache differ from the file's and were kept "
            "(the cache's own answers); pass --replace to take the file's",
            highlight=False,
        )


def _folder(option: Path | None, configured: Path | str) -> Path:
    return Path(option or os.environ.get("PRELABEL_CACHE_DIR") or configured)
