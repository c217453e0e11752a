"""Real servers for end-to-end tests: free ports, waiting for readiness, Rasa subprocesses."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).parent / "rasa")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers (any HTTP status), or fail with what the process printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running(
    args: list[str],
    ready_url: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `args` in its own process group, wait for `ready_url`, stop it (SIGINT) at the end."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=child_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_http(ready_url, timeout, process)
        except (RuntimeError, TimeoutError) as error:
            output = log_path.read_text(errors="replace")[-4000:] if log_path else ""
            raise RuntimeError(f"{' '.join(args[:3])}: {error}\n{output}") from None
        yield process
    finally:
        stop(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Ask the process group to stop like Ctrl-C does; kill it if it does not."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def action_server_args(port: int) -> list[str]:
    return [RASA, "run", "actions", "--actions", "actions", "--port", str(port)]
