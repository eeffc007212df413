"""The travel-time interface the dispatch engine and its policies use.

Policies never reach into a router's tables or its speed profile: they ask a :class:`TravelTimes` for times,
distances and routes. Semantics, everywhere in the platform:

* departure times are **epoch seconds** (UTC); the speed profile behind the object knows the service area's time
  zone and turns them into local time of day itself;
* times are whole seconds, distances whole metres, for the fastest route;
* arrays broadcast together like NumPy arguments.

:class:`~robotaxi.network.router.Router` implements it, and is safe to share between threads.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray


class TravelTimes(Protocol):
    """Travel times, distances and routes on one road network."""

    @property
    def n_nodes(self) -> int:
        """Number of nodes; node indices are ``0..n_nodes-1``."""
        ...

    def times(
        self, origins: ArrayLike, destinations: ArrayLike, depart_s: ArrayLike | None = None
    ) -> NDArray[np.int32]:
        """Seconds from each origin to each destination, leaving at ``depart_s`` (epoch s; None = free flow)."""
        ...

    def distances(self, origins: ArrayLike, destinations: ArrayLike) -> NDArray[np.int32]:
        """Metres along the fastest route."""
        ...

    def times_to(
        self, destinations: ArrayLike, origins: ArrayLike, depart_s: ArrayLike | None = None
    ) -> NDArray[np.int32]:
        """Seconds from every origin to each destination, shape ``(len(destinations), len(origins))``; ``depart_s``
        is None, one time, or one per origin (the layout for ranking many vehicles against each pickup)."""
        ...

    def times_at(self, origins: ArrayLike, destinations: ArrayLike, depart_s: int) -> NDArray[np.int64]:
        """:meth:`times` for valid node indices and one departure time, with as little overhead as possible."""
        ...

    def time1(self, origin: int, destination: int, depart_s: int | None = None) -> int:
        """:meth:`times` for one pair (plain ints, no array overhead)."""
        ...

    def distance1(self, origin: int, destination: int) -> int:
        """:meth:`distances` for one pair."""
        ...

    def divert(self, origin: int, destination: int, depart_s: int, at_s: int) -> tuple[int, int]:
        """Where a vehicle that left ``origin`` for ``destination`` at ``depart_s`` can change course.

        Returns ``(node, time_s)``: the first node on its route that it reaches at or after ``at_s`` (the
        destination, at its arrival time, if it gets there first). Vehicles re-route at the next node.
        """
        ...
