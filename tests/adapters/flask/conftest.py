"""The synchronous service fixtures (a real Graph API server, a recording backend, a service)."""

from tests.support.sync_service import graph, recorder, service

__all__ = ["graph", "recorder", "service"]
