"""The `prelabel` command: one module per command family, each registered with `register(app)`
in `app`, which holds the Typer app. The entry point `harness.cli:main` (pyproject.toml) is
`app.main`."""

from harness.cli.app import main

__all__ = ["main"]
