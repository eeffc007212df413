"""The ``robotaxi`` command line.

``main(argv)`` runs a command and returns its exit code (0 ok, 1 a RobotaxiError, 2 a usage error) without ever
letting a traceback reach the user for a problem they can fix; ``run()`` is the console-script entry point.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rich.text import Text

from ..errors import RobotaxiError
from . import compare as _compare  # noqa: F401
from . import dashboard as _dashboard  # noqa: F401
from . import demand as _demand  # noqa: F401
from . import fleet as _fleet  # noqa: F401
from . import ledger as _ledger  # noqa: F401
from . import network as _network  # noqa: F401  (registers commands)
from . import safety as _safety  # noqa: F401
from . import serve as _serve  # noqa: F401
from . import simulate as _simulate  # noqa: F401
from . import sweep as _sweep  # noqa: F401
from .app import app as app
from .app import err_console


def printable(text: str) -> str:
    """``text`` on one line with control characters and undecodable bytes escaped (``\\x00``, ``\\udcff``).

    Error messages quote file content (a CSV line, a header); binary junk must not reach the terminal raw.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    # A command may quieten the package's logging (`simulate -q`); the next in-process call starts afresh.
    ours = logging.getLogger("robotaxi")
    level = ours.level
    try:
        # Standalone mode: typer reports usage errors itself and always ends with SystemExit.
        app(args=args, prog_name="robotaxi")
    except RobotaxiError as e:
        err_console.print(Text.assemble(("error:", "bold red"), " ", printable(str(e))))
        return 1
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        err_console.print(printable(str(e.code)))
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    finally:
        ours.setLevel(level)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
