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


@pytest.mark.parametrize("command", [["simulate"], ["demand", "inspect"]])
def test_binary_scenario_file_is_one_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """A scenario .toml that is binary data: one error line naming the file (it was a UnicodeDecodeError)."""
    scen = tmp_path / "s.toml"
    scen.write_bytes(b'name = "x"\n\xd0\x00\xff junk')
    assert main([*command, str(scen)]) == 1
    err = capsys.readouterr().err
    assert f"{scen}: not a TOML text file (byte 0xd0 at offset 11)" in err
    assert "Traceback" not in err


def test_route_departure_must_be_finite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "helsinki", "--from", "24.94,60.17", "--to", "24.95,60.17", "--depart", "nan"]) == 1
    assert "--depart" in capsys.readouterr().err
