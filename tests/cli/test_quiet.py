"""``-q`` means quiet: no warnings from the package during the command, and the next call is not affected."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from robotaxi.cli import main
from robotaxi.errors import ScenarioError


def test_simulate_quiet_silences_warnings(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import robotaxi.sim

    def fake_run(*_args: Any, **_kwargs: Any) -> None:
        logging.getLogger("robotaxi.sim.run").warning("a warning a quiet run must not show")
        raise ScenarioError("stop here")

    monkeypatch.setattr(robotaxi.sim, "run_scenario", fake_run)
    caplog.set_level(logging.INFO)
    assert main(["simulate", "-q"]) == 1
    assert "a warning a quiet run must not show" not in caplog.text
    assert main(["simulate"]) == 1  # not quiet: the warning shows, the level was restored
    assert "a warning a quiet run must not show" in caplog.text
