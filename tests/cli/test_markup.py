"""Text in square brackets is printed as written: the CLI's consoles and help do not interpret rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.cli import main


def test_scenario_error_keeps_the_table_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text('name = "no-network"\n[fleet]\nvehicles = 3\n')
    assert main(["simulate", str(scen), "-q"]) == 1
    assert "[network]: missing table" in capsys.readouterr().err


def test_help_keeps_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demand", "inspect", "--help"]) == 0
    assert "[demand] table" in " ".join(capsys.readouterr().out.split())
