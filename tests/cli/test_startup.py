"""Start-up cost of the command line: the heavy packages load only when a command needs them (issue 11, item 8).

The goal itself (<= 0.3 s for ``robotaxi --help`` and ``ledger append``) is measured by
``benchmarks/bench_cli.py``; here the cause is checked: which modules a process has after importing the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "pyarrow", "pyproj", "shapely", "matplotlib", "osmium", "robotaxi.sim", "robotaxi.dispatch")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.integration
def test_cli_import_and_help_stay_light() -> None:
    loaded = _modules_after("from robotaxi.cli import main\nmain(['--help'])")
    assert not [m for m in HEAVY if m in loaded]


@pytest.mark.integration
def test_ledger_append_without_ids_needs_no_numpy() -> None:
    code = (
        "import pathlib, tempfile\n"
        "from robotaxi.cli import main\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "(d / 'a.jsonl').write_text('{\"kind\": \"note\"}\\n')\n"
        "assert main(['ledger', 'init', '-l', str(d / 'l.db')]) == 0\n"
        "assert main(['ledger', 'append', str(d / 'a.jsonl'), '-l', str(d / 'l.db')]) == 0\n"
    )
    loaded = _modules_after(code)
    assert not [m for m in HEAVY if m in loaded]
