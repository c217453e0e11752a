"""Child processes for the run command: start, relay output, wait until ready, stop.

Each child runs in its own process group (a new session), so that stopping it reaches everything
it started (rasa's own workers, a shell's children) and so that Ctrl-C in the terminal reaches only
the run command, which then stops the children in order.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STOP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Service:
    """A child process and the URL that answers once it is ready."""

    name: str
    args: tuple[str, ...]
    ready_url: str
    timeout: float
    port: int


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers(url: str) -> bool:
    """Any HTTP answer counts: the server is listening and routing."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class StartupError(Exception):
    """A child could not start; the message says which and why."""


class Supervisor:
    """Starts children in their own process groups, relays their output, stops them all."""

    def __init__(self, env: Mapping[str, str], cwd: Path, out: IO[str] | None = None) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.out = out or sys.stdout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.tails: dict[str, deque[str]] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def say(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def start(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            list(args),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children[name] = process
        self.tails[name] = deque(maxlen=40)
        thread = threading.Thread(target=self._relay, args=(name, process), daemon=True)
        thread.start()
        self._threads.append(thread)
        return process

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        tag = f"[{name}]".ljust(10)
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.tails[name].append(line)
            self.say(f"{tag} {line}")

    def run_to_end(self, name: str, args: Sequence[str]) -> int:
        """Run a command (training) in the foreground; Ctrl-C stops it too."""
        process = self.start(name, args)
        while process.poll() is None:
            if self.stopping.wait(0.2):
                self.stop_all()
        self._threads[-1].join(timeout=5)
        del self.children[name]
        return process.returncode

    def wait_ready(self, services: Sequence[Service]) -> None:
        """Until every service answers; `StartupError` if one dies or takes too long."""
        pending = list(services)
        started = time.monotonic()
        while pending:
            if self.stopping.is_set():
                return
            for service in list(pending):
                process = self.children[service.name]
                if process.poll() is not None:
                    raise StartupError(self._died(service.name, process.returncode))
                if answers(service.ready_url):
                    self.say(f"{'[run]'.ljust(10)} {service.name} is ready")
                    pending.remove(service)
                elif time.monotonic() - started > service.timeout:
                    raise StartupError(
                        f"{service.name} did not answer {service.ready_url} "
                        f"within {service.timeout:.0f} s"
                    )
            time.sleep(0.5)

    def watch(self) -> str | None:
        """Block until Ctrl-C (None) or until a child exits (its description)."""
        while not self.stopping.wait(0.5):
            for name, process in self.children.items():
                if process.poll() is not None:
                    return self._died(name, process.returncode)
        return None

    def _died(self, name: str, code: int | None) -> str:
        time.sleep(0.3)  # let the relay thread print the last lines
        tail = "\n".join(f"    {line}" for line in list(self.tails.get(name, ()))[-15:])
        return f"{name} exited with code {code}. Its last lines:\n{tail}"

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGINT to every process group (as Ctrl-C would), SIGKILL to what is left.

        What is left is judged by the whole group, not its leader: a script that started its
        server in the background exits on SIGINT at once, while the server (SIGINT is ignored
        for a background job) would otherwise outlive `make run`, holding its port.
        """
        for process in reversed(list(self.children.values())):
            if _group_alive(process.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            while _group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(process.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        for thread in self._threads:
            thread.join(timeout=2)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group `pgid` that we may signal still runs.

    Zombies do not count (on Linux, read from /proc): a member orphaned to an init that does
    not reap would otherwise hold every stop for its whole timeout. Where /proc is missing,
    any member counts.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or not ours to wait for
        return False
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
