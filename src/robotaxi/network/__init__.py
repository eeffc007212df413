"""Road networks: loading (OSM PBF, OSMnx JSON/GraphML, synthetic grids), snapping, caching and routing."""

from .cache import load_network_cache as load_network_cache
from .cache import save_network as save_network
from .graph import DEFAULT_SNAP_LIMIT_M as DEFAULT_SNAP_LIMIT_M
from .graph import PruneReport as PruneReport
from .graph import RoadNetwork as RoadNetwork
from .grid import grid_city as grid_city
from .io import helsinki_pbf as helsinki_pbf
from .io import load_network as load_network
from .osm import load_pbf as load_pbf
from .osmnx_io import load_graphml as load_graphml
from .osmnx_io import load_node_link_json as load_node_link_json
from .router import Router as Router
from .speeds import SpeedProfile as SpeedProfile
from .travel import TravelTimes as TravelTimes
