"""The thread bridge: one asyncio event loop in a daemon thread, for synchronous frameworks.

Flask and Django handle each request in a plain thread, while the core is async (the Graph
client, the de-duplication store, the per-sender queues). `LoopThread` runs one loop for the
whole process; request threads hand it coroutines with `run` and wait for the result.

`close_at_exit` registers an object's `close()` to run when the interpreter exits normally
(Ctrl-C on `flask run`, a worker's graceful stop), early enough that thread pools still work.
"""

import asyncio
import atexit
import concurrent.futures
import concurrent.futures.thread  # registers its exit hook before ours: see _install_exit_hook
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Closeable(Protocol):
    def close(self) -> Any: ...


class LoopThread:
    """An asyncio event loop running in a daemon thread, until `stop`."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="whatsapp-service-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                leftovers = asyncio.all_tasks(self.loop)
                for task in leftovers:
                    task.cancel()
                if leftovers:
                    self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop and wait for its result (from another thread).

        Raises:
            TimeoutError: it did not finish in time (it is then cancelled).
            RuntimeError: the loop is closed, or this is the loop's own thread.
        """
        if threading.get_ident() == self._thread.ident:
            coroutine.close()
            raise RuntimeError("cannot wait for the service's loop from the loop itself")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:
            coroutine.close()
            raise
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"not finished within {timeout} s") from None

    def stop_soon(self) -> None:
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in the meantime
                self.loop.call_soon_threadsafe(self.loop.stop)

    def stop(self, timeout: float) -> None:
        self.stop_soon()
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout)


# -- closing at exit --------------------------------------------------------------------------

_open_services: "weakref.WeakSet[Closeable]" = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_installed = False


def close_at_exit(service: Closeable) -> None:
    """Call `service.close()` when the interpreter exits normally (once)."""
    global _exit_hook_installed
    with _exit_hook:
        _open_services.add(service)
        if not _exit_hook_installed:
            _install_exit_hook()
            _exit_hook_installed = True


def _install_exit_hook() -> None:
    """Close open services when the interpreter exits normally.

    `threading._register_atexit` (CPython, used by `concurrent.futures` itself) runs before the
    thread pools shut down; a plain `atexit` hook runs after, when `asyncio.to_thread` (sync
    backends) and aiohttp's DNS lookups can no longer start, so messages drained then could not
    be answered. Hooks run in reverse order of registration; `concurrent.futures.thread`
    (imported at the top of this module, else lazily on first use and too late) registers its
    own on import, so ours runs first. If that hook is not available, `atexit` is the fallback.
    """
    register = getattr(threading, "_register_atexit", None)
    if callable(register):
        try:
            register(_close_open_services)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_close_open_services)


def _close_open_services() -> None:
    for service in list(_open_services):
        try:
            service.close()
        except Exception:
            logger.exception("Closing %r at exit failed.", service)


def forget_at_exit(service: Closeable) -> None:
    """Undo `close_at_exit` (the service was closed already)."""
    _open_services.discard(service)
