"""Distances on the Earth, to find the store nearest to a shared location."""

import math
from collections.abc import Iterable
from typing import Final

from actions.catalogue import STORES, Store

EARTH_RADIUS_KM: Final = 6371.0088
"""Mean Earth radius (IUGG), the usual choice for haversine distances."""


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest_store(
    latitude: float, longitude: float, stores: Iterable[Store] = STORES
) -> tuple[Store, float]:
    """The nearest store and its distance in km."""
    distances = [
        (store, distance_km(latitude, longitude, store.latitude, store.longitude))
        for store in stores
    ]
    return min(distances, key=lambda pair: pair[1])


def directions_url(store: Store) -> str:
    """Google Maps directions to the store (https://developers.google.com/maps/documentation/urls)."""
    return f"https://www.google.com/maps/dir/?api=1&destination={store.latitude},{store.longitude}"
