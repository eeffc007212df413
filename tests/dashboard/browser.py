"""Driving the replay page in the system's headless Chromium (Debian package ``chromium``) with Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
#: Bound of every wait on the page's state (a loaded machine renders slowly; a passing wait ends much earlier).
WAIT_MS = 90_000


@dataclass
class Session:
    """A page and what its console said."""

    page: Page
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def api(self, expression: str, arg: Any = None) -> Any:
        """Evaluate ``expression`` (a function of ``(api, arg)``) against ``window.robotaxiReplay``."""
        return self.page.evaluate(f"([arg]) => ({expression})(window.robotaxiReplay, arg)", [arg])

    def next_frames(self, n: int = 3) -> None:
        """Wait for ``n`` animation frames (deck.gl draws new layers, and picks from them, on its next frame)."""
        script = (
            "n => new Promise(done => { const f = k => (k ? requestAnimationFrame(() => f(k - 1)) : done()); f(n); })"
        )
        self.page.evaluate(script, n)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector).strip()

    def click_object(self, layer: str, x: float, y: float) -> None:
        """Click the map at page coordinates ``(x, y)`` once deck.gl picks an object of ``layer`` there.

        deck.gl picks from what it last drew: a click before the layers of the current time are drawn (a slow frame
        under load) would find nothing. So wait until the pick at that point answers, then click; the caller waits
        for the page to show what the click opened (deck reports a single click once a double click is ruled out).
        """
        self.page.wait_for_function(
            """([x, y, id]) => {
                const api = window.robotaxiReplay;
                const box = document.getElementById('map').getBoundingClientRect();
                const info = api.app.deck.pickObject({x: x - box.left, y: y - box.top, radius: 2});
                return Boolean(info && info.layer && info.layer.id === id);
            }""",
            arg=[x, y, layer],
            timeout=WAIT_MS,
        )
        self.page.mouse.click(x, y)


@contextmanager
def open_page(browser: Browser, url: str, *, offline: bool = False) -> Iterator[Session]:
    """Open ``url`` in a fresh context and wait until the replay has drawn its first frame."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, offline=offline)
    page = context.new_page()
    session = Session(page)

    def on_console(msg: ConsoleMessage) -> None:
        (session.errors if msg.type == "error" else session.warnings).append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: session.errors.append(f"page error: {e}"))
    page.on("request", lambda r: session.requests.append(r.url))
    try:
        page.goto(url)
        page.wait_for_selector("body[data-rendered]", timeout=WAIT_MS)
        yield session
    finally:
        context.close()
