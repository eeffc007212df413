"""Replay dashboard: page load time and frame rate in headless Chromium.

    python benchmarks/bench_dashboard.py out/manhattan_weekday [--at 08:00] [--speed 60] [--seconds 10]

Exports the run to one HTML file (timed), opens it in the system's headless Chromium (Debian ``chromium``, driven by
Playwright), and prints:

* the page load: from navigation until the first frame is drawn (payload inflated, arrays indexed, map drawn), and
  the part of it spent in the page's own start-up code;
* the frame rate while playing from ``--at`` at ``--speed``, from the browser's own ``requestAnimationFrame``
  timestamps (mean rate, median / 95th-percentile / worst frame interval), with the number of vehicles drawn and
  moving along a leg at the start and end of the measurement.

The goal (issue 14): at least 30 frames per second with 8,000 moving vehicles, page loaded within 5 s.
Machines are shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from robotaxi.dashboard import export_replay, load_replay

CHROMIUM = "/usr/bin/chromium"

FRAME_PROBE = """
seconds => new Promise(done => {
  const stamps = [];
  const start = performance.now();
  const step = ts => {
    stamps.push(ts);
    if (ts - start < seconds * 1000) requestAnimationFrame(step); else done(stamps);
  };
  requestAnimationFrame(step);
})
"""


def _clock(text: str) -> int:
    hh, mm = text.split(":")
    return int(hh) * 3600 + int(mm) * 60


def _screenshots(page: Page, folder: Path, times: list[str], name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for at in times:
        page.evaluate("t => window.robotaxiReplay.seek(t)", _clock(at))
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        path = folder / f"dashboard_{name.split('_', maxsplit=1)[0]}_{at.replace(':', '')}.png"
        page.screenshot(path=str(path))
        print(f"screenshot {at}: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run folder written by `robotaxi simulate`")
    ap.add_argument("--at", default="08:00", help="replay time to start playing from (HH:MM)")
    ap.add_argument("--speed", type=int, default=60, help="replay speed (1, 10, 60, 120, 300, 600, 1800, 3600)")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to measure frames")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--html", type=Path, help="use this exported page instead of exporting the run")
    ap.add_argument("--screenshots", type=Path, help="also save the replay at each --shot time into this folder")
    ap.add_argument("--shot", action="append", default=[], help="HH:MM of a screenshot (repeatable)")
    args = ap.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    if args.html is None:
        t0 = time.perf_counter()
        data = load_replay(args.run)
        t1 = time.perf_counter()
        page_path = Path(tempfile.mkdtemp()) / "replay.html"
        export_replay(data, page_path)
        t2 = time.perf_counter()
        print(f"read run: {t1 - t0:.1f} s ({data.n_vehicles:,} vehicles, {data.meta['legs']:,} legs, "
              f"{data.n_requests:,} requests); page written: {t2 - t1:.1f} s, "
              f"{page_path.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    else:
        page_path = args.html

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        t0 = time.perf_counter()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-rendered]", timeout=60_000)
        load_s = time.perf_counter() - t0
        startup_ms = page.evaluate("window.robotaxiReplay.loadMs")
        print(f"page load: {load_s:.2f} s to the first drawn frame (page start-up code {startup_ms / 1000:.2f} s)")
        if args.screenshots is not None:
            _screenshots(page, args.screenshots, args.shot or ["08:00", "22:00"], args.run.name)
        page.evaluate("t => window.robotaxiReplay.seek(t)", _clock(args.at))
        page.select_option("#speed", str(args.speed))
        page.evaluate("() => window.robotaxiReplay.play()")
        before = page.evaluate("window.robotaxiReplay.snapshot()")
        stamps = page.evaluate(FRAME_PROBE, args.seconds)
        after = page.evaluate("window.robotaxiReplay.snapshot()")
        browser.close()

    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    fps = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)
    q = statistics.quantiles(gaps, n=20)
    print(f"replay {args.at} at {args.speed}x for {args.seconds:.0f} s: vehicles drawn {before['drawn']:,} -> "
          f"{after['drawn']:,}, moving {before['moving']:,} -> {after['moving']:,}, "
          f"open requests {before['open']:,} -> {after['open']:,}")  # fmt: skip
    print(f"frames: {fps:.1f} per second; interval median {statistics.median(gaps):.1f} ms, "
          f"p95 {q[18]:.1f} ms, worst {max(gaps):.1f} ms ({len(gaps)} intervals)")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}; console errors: {len(errors)}")


if __name__ == "__main__":
    main()
