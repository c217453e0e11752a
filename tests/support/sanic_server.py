"""Serving a Sanic app (Rasa's own) on a real port inside the test's event loop."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.support.processes import free_port


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run `app` on 127.0.0.1 with its listeners, like `rasa run` does; yield its base URL.

    Leaving the block stops it the way Sanic does on Ctrl-C: `before_server_stop` listeners run
    (our channel finishes accepted messages there), then connections close.
    """
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()
