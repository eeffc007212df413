"""``robotaxi dashboard``: export, serve, and one-line errors with exit code 1 for bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from robotaxi.cli import main

pytestmark = pytest.mark.integration


def test_export_writes_one_self_contained_page(
    morning_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay.html"
    assert main(["dashboard", str(morning_run), "--export", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert '<script id="replay-data" type="application/octet-stream">H4sI' in text  # gzip magic, in base64
    # Nothing is fetched: no external script, stylesheet or image.
    assert "src=" not in text.split('<script id="replay-data"')[0]
    assert "<link" not in text
    assert "replay: " in capsys.readouterr().out


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_folder_that_is_not_a_run_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", str(tmp_path), "--export", str(tmp_path / "x.html")]) == 1
    assert "not a simulator run folder" in _error_line(capsys)
    assert not (tmp_path / "x.html").exists()
    assert main(["dashboard", str(tmp_path / "nope"), "--no-open"]) == 1
    assert "run folder not found" in _error_line(capsys)


def test_bad_or_busy_port_is_one_line_and_exit_1(morning_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", str(morning_run), "--port", "70000", "--no-open"]) == 1
    assert "not a TCP port" in _error_line(capsys)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", str(morning_run), "--port", str(port), "--no-open"]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in _error_line(capsys)


def test_a_tile_url_without_placeholders_is_one_line_and_exit_1(
    morning_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dashboard", str(morning_run), "--export", str(tmp_path / "x.html"), "--tiles", "https://t.example/a.png"]
    assert main(args) == 1
    assert "not a tile URL template" in _error_line(capsys)
    assert not (tmp_path / "x.html").exists()


def test_unwritable_export_is_one_line_and_exit_1(
    morning_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", str(morning_run), "--export", str(tmp_path / "no" / "such" / "dir.html")]) == 1
    assert "cannot write" in _error_line(capsys)


def test_serves_the_page_until_stopped(morning_run: Path) -> None:
    env = {**os.environ, "COLUMNS": "300"}
    cmd = [
        sys.executable,
        "-c",
        "from robotaxi.cli import run; run()",
        "dashboard",
        str(morning_run),
        "--port",
        "0",
        "--no-open",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/html")
            assert b'<script id="replay-data"' in resp.read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "other", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
