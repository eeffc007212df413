"""Demand: ride requests from real trip records, origin-destination counts and synthetic models."""

from .requests import Requests as Requests
