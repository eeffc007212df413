"""The operations dashboard: replay a finished simulator run in a browser.

``load_replay`` reads a run folder (the one adapter that knows the simulator's output schema), ``replay_html`` /
``export_replay`` make the self-contained page, ``make_server`` serves it. See ``docs/dashboard.md``.
"""

from .page import export_replay as export_replay
from .page import replay_html as replay_html
from .replay_data import CATEGORIES as CATEGORIES
from .replay_data import DashboardError as DashboardError
from .replay_data import ReplayData as ReplayData
from .replay_data import find_network as find_network
from .replay_data import load_replay as load_replay
from .server import make_server as make_server
