"""The sandbox application: the Graph API stand-in, the chat page, and webhook delivery.

`create_app(config)` wires the parts together; `python -m sandbox` runs it on its own and
`python -m devtools.run` runs it beside the bot. Routes live in `graph.py` (what the bot calls) and
`chat.py` (what the page and tests call).
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from . import chat, graph
from .config import SandboxConfig
from .context import SANDBOX, Sandbox, Settings
from .delivery import WebhookSender
from .errors import GraphError
from .faults import FaultQueue
from .rates import RateLimits
from .state import SandboxState

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 110 * 1024 * 1024
"""Documents can be 100 MB; anything bigger is refused before it is read."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def graph_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn a `GraphError` into Meta's error envelope and HTTP status."""
    try:
        return await handler(request)
    except GraphError as error:
        return web.json_response(error.body(), status=error.status, headers=error.headers)


def create_app(config: SandboxConfig | None = None) -> web.Application:
    """A ready-to-run sandbox; webhook delivery starts and stops with the application."""
    config = config or SandboxConfig()
    state = SandboxState(config.contacts, config.groups)
    rates = RateLimits(config.throughput_per_second, config.pair_interval, config.pair_burst)
    sender = WebhookSender(config, state)
    sandbox = Sandbox(config, state, FaultQueue(), sender, Settings.from_config(config), rates)
    app = web.Application(middlewares=[graph_errors], client_max_size=MAX_REQUEST_BYTES)
    app[SANDBOX] = sandbox
    graph.add_routes(app)
    chat.add_routes(app, Path(config.static_dir))

    async def delivery(_: web.Application) -> AsyncIterator[None]:
        await sandbox.sender.start()
        yield
        await sandbox.sender.close()

    async def end_streams(_: web.Application) -> None:
        state.close_subscriptions()

    app.cleanup_ctx.append(delivery)
    # aiosignal 1.4 types Signal by its arguments, which aiohttp 3.9's annotations predate.
    app.on_shutdown.append(end_streams)  # type: ignore[arg-type]
    return app
