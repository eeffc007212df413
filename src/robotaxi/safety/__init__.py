"""Safety: disengagement and collision records, the Poisson disengagement process, miles per disengagement with
exact intervals, DMV-format reports of simulated runs, and the analysis of published DMV and OL 316 data.

The records, roads, process and statistics modules are plain Python and NumPy (SciPy for the interval); the
modules that read and write files (``runs`` and ``report`` with pyarrow, ``dmv``, ``analyze``, ``collisions``) are
imported by name.
"""

from .process import DisengagementProcess as DisengagementProcess
from .process import DisengagementRates as DisengagementRates
from .process import SafetyProfile as SafetyProfile
from .process import SafetyProfiles as SafetyProfiles
from .records import CollisionRecord as CollisionRecord
from .records import Damage as Damage
from .records import DisengagementRecord as DisengagementRecord
from .records import Fault as Fault
from .records import Initiator as Initiator
from .records import LocationType as LocationType
from .records import Motion as Motion
from .records import ReportingPeriod as ReportingPeriod
from .roads import location_type as location_type
from .roads import road_class_from_speed as road_class_from_speed
from .stats import MilesPerDisengagement as MilesPerDisengagement
from .stats import miles_per_disengagement as miles_per_disengagement
from .stats import poisson_interval as poisson_interval
from .vin import simulated_vin as simulated_vin
