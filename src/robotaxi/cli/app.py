"""The typer application object and the shared console; subcommand modules register on it."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="robotaxi",
    help="robotaxi: an open operations platform for autonomous ride-hailing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Standard output for results; errors go to ``err_console``.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
