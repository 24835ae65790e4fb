"""`python -m harness.cli`: the `prelabel` command."""

from harness.cli.app import main

main()
