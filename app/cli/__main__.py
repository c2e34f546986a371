"""`python -m app.cli`: the same as the `docchat` command."""

from app.cli import main

main()
