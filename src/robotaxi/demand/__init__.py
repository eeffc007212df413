"""Demand: ride requests from real trip records, origin-destination counts and synthetic models.

Every source is a frozen parameter object implementing :class:`DemandSource`; :func:`load_demand` runs the one a
scenario's ``[demand]`` table (:class:`DemandSpec`) names. See docs/demand.md.
"""

from .generic import HIVE_COLUMNS as HIVE_COLUMNS
from .generic import KNOWN_LAYOUTS as KNOWN_LAYOUTS
from .generic import TableSource as TableSource
from .generic import detect_layout as detect_layout
from .odcounts import ODCountsColumns as ODCountsColumns
from .odcounts import ODCountsSource as ODCountsSource
from .odcounts import business_days as business_days
from .odcounts import manhattan_weekday as manhattan_weekday
from .records import ColumnMapping as ColumnMapping
from .records import RecordOptions as RecordOptions
from .records import load_records as load_records
from .requests import Requests as Requests
from .source import DemandResult as DemandResult
from .source import DemandSource as DemandSource
from .source import Seed as Seed
from .source import as_generator as as_generator
from .spec import SOURCE_BUILDERS as SOURCE_BUILDERS
from .spec import DemandSpec as DemandSpec
from .spec import RequestsFileSource as RequestsFileSource
from .spec import build_demand as build_demand
from .spec import load_demand as load_demand
from .synthetic import MANHATTAN_HOURLY_PROFILE as MANHATTAN_HOURLY_PROFILE
from .synthetic import SyntheticSource as SyntheticSource
from .synthetic import osm_node_weights as osm_node_weights
from .synthetic import synthetic_demand as synthetic_demand
from .tlc import TLC_COLUMN_VARIANTS as TLC_COLUMN_VARIANTS
from .tlc import TLCSource as TLCSource
from .tlc import detect_tlc_columns as detect_tlc_columns
from .tlc import tlc_trips as tlc_trips
from .validation import LoadReport as LoadReport
from .validation import RejectExample as RejectExample
from .validation import RejectReason as RejectReason
from .zones import ZoneNodes as ZoneNodes
from .zones import Zones as Zones
