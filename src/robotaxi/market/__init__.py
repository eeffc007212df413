"""The marketplace's money: fares, surge, commission, rider choice, operator costs and per-operator accounts.

Pure functions and small frozen parameter objects over NumPy columns; money is integer cents everywhere, rates
are integer basis points, and every rounding is half up on exact integers (``docs/marketplace.md``). The engine,
the simulator and the scenario loader call into this package; it calls none of them.
"""

from .accounting import MarketAccounts as MarketAccounts
from .accounting import OperatorAccount as OperatorAccount
from .accounting import OperatorActivity as OperatorActivity
from .accounting import account as account
from .accounting import reconcile as reconcile
from .choice import RiderChoice as RiderChoice
from .commission import Commission as Commission
from .config import ChoiceSettings as ChoiceSettings
from .config import Pricing as Pricing
from .config import SurgeSettings as SurgeSettings
from .config import operator_terms as operator_terms
from .config import parse_choice as parse_choice
from .config import parse_commission as parse_commission
from .config import parse_costs as parse_costs
from .config import parse_fares as parse_fares
from .config import parse_pricing as parse_pricing
from .config import parse_surge as parse_surge
from .costs import COST_TERMS as COST_TERMS
from .costs import CostModel as CostModel
from .fares import FareSchedule as FareSchedule
from .quotes import FareQuoter as FareQuoter
from .surge import SurgeParams as SurgeParams
from .surge import SurgePricer as SurgePricer
from .surge import SurgeTable as SurgeTable
from .trips import OperatorTerms as OperatorTerms
from .trips import PricedTrips as PricedTrips
from .trips import price_trips as price_trips
