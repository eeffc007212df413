"""The typer application object and the shared consoles; subcommand modules register on it.

Neither the help nor the consoles interpret rich markup: user text (file names, TOML table names such as
``[demand]``, error messages) is printed as written. Code that wants a style passes ``markup=True`` or a
``rich.text.Text`` explicitly.
"""

from __future__ import annotations

import typer
from rich.console import Console, RenderableType

#: Help is plain text: rich markup would swallow ``[network]`` and the like (issue 11, item 7).
MARKUP_MODE = None


def sub_app(help_text: str) -> typer.Typer:
    """A command group that formats its help like the main application."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=MARKUP_MODE)


app = typer.Typer(
    name="robotaxi",
    help="robotaxi: an open operations platform for autonomous ride-hailing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP_MODE,
)

#: Standard output for results; errors go to ``err_console``. ``soft_wrap``: lines are never broken mid-phrase
#: (a terminal wraps them itself; a file or pipe gets them whole).
console = Console(highlight=False, markup=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def print_table(table: RenderableType) -> None:
    """Print a table on standard output; when that is not a terminal, at its natural width (never wrapped)."""
    if console.is_terminal:
        console.print(table)
        return
    # A pipe or a file gets the whole table: rich would otherwise wrap its cells at 80 columns.
    Console(file=console.file, width=1000, highlight=False, markup=False).print(table)
