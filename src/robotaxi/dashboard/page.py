"""The replay page: one self-contained HTML file (styles, the deck.gl bundle and the run's data inlined).

Nothing is loaded from the network when the page runs: the drawing code is the bundle built from
``web/dashboard/`` and shipped in this package (``static/dashboard.js``), and the run is a gzip payload in base64
inside the page, inflated by the browser's own ``DecompressionStream``.
"""

from __future__ import annotations

import base64
import html
from importlib import resources
from pathlib import Path

from . import _payload
from .replay_data import DashboardError, ReplayData

_MARKERS = ("__TITLE__", "__PAYLOAD__", "__BUNDLE__")


def _static(name: str) -> str:
    try:
        return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DashboardError(f"the dashboard asset {name} is missing from the installed package: {e}") from e


def _page(title: str, payload: str) -> str:
    template, bundle = _static("index.html"), _static("dashboard.js")
    if any(template.count(m) != 1 for m in _MARKERS):
        raise DashboardError("the dashboard page template is damaged (a placeholder is missing or repeated)")
    if "</script" in bundle.lower():
        raise DashboardError("the dashboard bundle contains '</script' and cannot be inlined")
    head, rest = template.split("__TITLE__")
    middle, tail = rest.split("__PAYLOAD__")
    before_bundle, after_bundle = tail.split("__BUNDLE__")
    return "".join((head, html.escape(title), middle, payload, before_bundle, bundle, after_bundle))


def live_html() -> str:
    """The live page of ``robotaxi serve --dashboard``: the same page without a payload (an empty data element
    puts it in live mode), which signs in and then draws what the feed ``/v1/dashboard/feed`` sends.

    Raises
    ------
    DashboardError
        If the package's page assets are missing or damaged.
    """
    return _page("live", "")


def replay_html(data: ReplayData) -> str:
    """The replay page of ``data`` as one HTML document that plays offline.

    Raises
    ------
    DashboardError
        If the package's page assets are missing or damaged.
    """
    payload = base64.b64encode(_payload.encode(data)).decode("ascii")
    return _page(str(data.meta.get("name", "run")), payload)


def export_replay(data: ReplayData, path: str | Path) -> Path:
    """Write the replay page of ``data`` to ``path`` and return it.

    Raises
    ------
    DashboardError
        If the file cannot be written.
    """
    out = Path(path)
    text = replay_html(data)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise DashboardError(f"cannot write {out}: {e}") from e
    return out
