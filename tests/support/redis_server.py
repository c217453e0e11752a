"""A throwaway redis-server on 127.0.0.1 (Debian's package; .ci/run installs it)."""

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

from tests.support.processes import free_port
from tests.support.programs import need_program


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server on a free port, without persistence; yield its URL."""
    binary = need_program("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
