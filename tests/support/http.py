"""The HTTP client the tests talk to their servers with."""

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
"""Far over any answer a test waits for, far under the test timeout (300 s, pyproject.toml).

aiohttp's own default is 300 s, the test timeout itself: a server that never answered then ended
the run in a thread dump instead of failing one test at the request that hung."""


def client_session(**kwargs: object) -> aiohttp.ClientSession:
    """An `aiohttp.ClientSession` whose requests give up after `REQUEST_TIMEOUT`."""
    return aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, **kwargs)  # type: ignore[arg-type]
