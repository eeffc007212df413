"""The network CLI: results on stdout, clear errors and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robotaxi.cli import main

from ..conftest import shared_file


@pytest.mark.integration
def test_network_info_helsinki(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["network", "info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["name"] == "Helsinki"
    assert facts["nodes"] > 700
    assert facts["pruned"]["components_dropped"] > 0


@pytest.mark.integration
@pytest.mark.parametrize(
    ("relative", "nodes"),
    [("data/nyc_manhattan_hive/manhattan_network.json", 4197), ("data/denver_hive/downtown_denver_network.json", 308)],
)
def test_network_info_shared(capsys: pytest.CaptureFixture[str], relative: str, nodes: int) -> None:
    assert main(["network", "info", str(shared_file(relative)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == nodes


@pytest.mark.integration
def test_network_info_table_and_save(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "h.npz"
    assert main(["network", "info", "helsinki", "--save", str(out)]) == 0
    text = capsys.readouterr().out
    assert "nodes" in text
    assert "total length" in text
    assert out.is_file()
    assert main(["network", "info", str(out), "--json"]) == 0


@pytest.mark.integration
def test_route_manhattan(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(shared_file("data/nyc_manhattan_hive/manhattan_network.json"))
    # Times Square to Columbus Circle.
    assert main(["route", path, "--from", "-73.9855,40.7580", "--to", "-73.9819,40.7681", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 900 < result["distance_m"] < 2500
    assert 60 < result["time_s"] < 600
    assert result["nodes"] >= 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["network", "info", "/no/such/file.osm.pbf"], "not found"),
        (["network", "info", "roads.csv"], "unknown network format"),
        (["route", "helsinki", "--from", "24.94,60.17", "--to", "0,0"], "off the Helsinki network"),
        (["route", "helsinki", "--from", "24.94", "--to", "24.95,60.17"], "expected LON,LAT"),
        (["route", "helsinki"], "give both --from"),
    ],
)
def test_cli_errors_are_clear(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["network", "no-such-command"]) == 2
    assert main([]) == 2  # no arguments: help on stderr, usage exit code
    assert "Usage" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("frm", "message"),
    [
        ("500,100", "--from: longitude must be in -180..180, got '500,100'"),
        ("24.94,95", "did you mean 95,24.94?"),
        ("nan,60.17", "must be finite"),
        ("inf,60.17", "must be finite"),
    ],
)
def test_route_out_of_range_coordinates(capsys: pytest.CaptureFixture[str], frm: str, message: str) -> None:
    """Degrees outside -180..180 / -90..90 are a one-line error (it was a KD-tree traceback), with a swap hint."""
    assert main(["route", "helsinki", "--from", frm, "--to", "24.95,60.17"]) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_route_swapped_coordinates_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """LAT,LON that happens to be in range is off the network; the hint says the order looks swapped."""
    assert main(["route", "helsinki", "--from", "60.17,24.94", "--to", "24.95,60.17"]) == 1
    assert "look swapped" in capsys.readouterr().err


def test_snap_out_of_range_degrees_is_off_network() -> None:
    from robotaxi.errors import OffNetworkError
    from robotaxi.network import grid_city

    net = grid_city(3, 3)
    _idx, dist = net.nearest([500.0, float(net.lon[0])], [100.0, float(net.lat[0])])
    assert np.isinf(dist[0])
    assert dist[1] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(OffNetworkError, match="off the"):
        net.snap([500.0], [100.0])


@pytest.mark.parametrize(("content", "message"), [(b"", "empty (0 bytes)"), (b"PK\x03\x04abc", "not a robotaxi")])
def test_broken_npz_cache_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    """A 0-byte or truncated cache names the file and the problem (a 0-byte file printed only "Aborted.")."""
    bad = tmp_path / "net.npz"
    bad.write_bytes(content)
    assert main(["network", "info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err
    assert message in err
    assert "Aborted" not in err


def test_table_is_not_wrapped_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    """Tables printed to a pipe keep whole cells: the source path of the network is on one line."""
    from robotaxi.network import helsinki_pbf

    assert main(["network", "info", "helsinki"]) == 0
    out = capsys.readouterr().out
    assert str(helsinki_pbf()) in out
