"""pytest-timeout's "thread" timer, with an ending a CI log's tail can be read by.

CI keeps only the last lines of a run's output. pytest-timeout ends a stuck run with the stack of
every thread, so those lines showed pytest's own frames and not which test hung nor what it
awaited (an idle event loop shows no frame of its tasks at all). This timer dumps the same stacks,
then the stack of every pending asyncio task, and ends with a short summary: one line per pending
task (where it waits) and, last, the test's node id and the phase (setup, call, teardown) that
ran over. Then it ends the run like pytest-timeout does (`os._exit(1)`), so CI fails instead of
hanging.
"""

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import pytest
from _pytest.logging import caplog_records_key
from pytest_timeout import is_debugging

setup_seconds_key = pytest.StashKey[float]()

PHASE_SECONDS = {"setup": 600.0, "teardown": 300.0}
"""Fixture setup and teardown get their own timers: a module's first test starts servers (two
`rasa run`, Redis, PostgreSQL, a model trained once per run), which on a cold CI runner took a
good part of the test's own 300 s, and the test was stopped mid-way, looking hung."""
SUMMARY_TASKS = 12
"""How many pending tasks the closing summary names (the full stacks come before it)."""
CAPTURED_CHARS = 4000
CAPTURED_RECORDS = 100


def pending_tasks() -> list["asyncio.Task[Any]"]:
    """Every task of any loop that has not ended, read from another thread.

    `asyncio.all_tasks` needs the loop, which belongs to the stuck thread; the registry it reads
    is a module-level WeakSet, copied here (a retry if a task starts or ends meanwhile)."""
    registry = getattr(asyncio.tasks, "_all_tasks", None)
    if registry is None:
        return []
    for _ in range(10):
        try:
            return [task for task in list(registry) if not task.done()]
        except RuntimeError:  # the set changed size while it was copied
            continue
    return []


def where(task: "asyncio.Task[Any]") -> str:
    """The innermost frame a task waits in, as `name: function (file:line)`."""
    frames = task.get_stack()
    coro = task.get_coro()
    label = f"{task.get_name()} {getattr(coro, '__qualname__', coro)!s}"
    if not frames:
        return f"{label}: no frame"
    frame = frames[-1]
    return f"{label}: {frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})"


def write_captured(item: pytest.Item, phase: str, out: TextIO, captured: tuple[str, str]) -> None:
    """The test's output and its last log records, which pytest would show for a failure."""
    stdout, stderr = captured
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        if text:
            out.write(f"~~~ captured {name} (the last {CAPTURED_CHARS} characters)\n")
            out.write(text[-CAPTURED_CHARS:] + "\n")
    records = item.stash.get(caplog_records_key, {}).get(phase, [])
    if records:
        out.write(f"~~~ the last {min(len(records), CAPTURED_RECORDS)} log records\n")
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        for record in records[-CAPTURED_RECORDS:]:
            out.write(formatter.format(record) + "\n")


def write_report(item: pytest.Item, phase: str, timeout: float, captured: tuple[str, str]) -> None:
    """Everything a reader needs to find the hang, most telling last."""
    out = sys.stderr
    write_captured(item, phase, out, captured)
    me = threading.get_ident()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    out.write(f"\n{'+' * 30} Timeout {'+' * 30}\n")
    for ident, frame in sys._current_frames().items():
        if ident != me:
            out.write(f"~~~ stack of thread {names.get(ident, '<unknown>')} ({ident})\n")
            out.write("".join(traceback.format_stack(frame)))
    tasks = pending_tasks()
    for task in tasks:
        out.write("~~~ ")
        task.print_stack(file=out)
    out.write(f"~~~ {len(tasks)} pending asyncio tasks, where each waits:\n")
    for task in tasks[:SUMMARY_TASKS]:
        out.write(f"  {where(task)}\n")
    setup = item.stash.get(setup_seconds_key, None)
    took = f"; its setup took {setup:.1f} s" if phase == "call" and setup is not None else ""
    out.write(f"Timeout: {item.nodeid}: its {phase} ran over {timeout:g} s{took} (stacks above)\n")
    out.flush()


def expire(item: pytest.Item, phase: str, timeout: float) -> None:
    if is_debugging():  # a breakpoint, --pdb: as pytest-timeout, never end a debugging session
        return
    try:
        capture = item.config.pluginmanager.getplugin("capturemanager")
        captured = ("", "")
        if capture is not None:
            capture.suspend_global_capture(item)
            captured = capture.read_global_capture()
        write_report(item, phase, timeout, captured)
    except Exception:  # a report that fails must still end the run
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def arm(item: pytest.Item, phase: str, timeout: float) -> Callable[[], None]:
    """Start the timer of one phase of `item`; the function that stops it."""
    timer = threading.Timer(timeout, expire, (item, phase, timeout))
    timer.name = f"watchdog {phase} {item.nodeid}"
    timer.daemon = True
    timer.start()

    def cancel() -> None:
        timer.cancel()
        timer.join()

    return cancel


def timeouts_off(item: pytest.Item) -> bool:
    """`--timeout=0` (or `timeout = 0`): no timer at all, for the phases either."""
    value = item.config.getoption("timeout", None)
    if value is None:
        value = item.config.getini("timeout")
    return not float(value or 0)


def timed(item: pytest.Item, phase: str) -> Iterator[None]:
    """The body of a phase's hook wrapper: its timer around it (and, for setup, its length)."""
    if timeouts_off(item):
        yield
        return
    cancel = arm(item, phase, PHASE_SECONDS[phase])
    started = time.monotonic()
    try:
        yield
    finally:
        cancel()
        if phase == "setup":
            item.stash[setup_seconds_key] = time.monotonic() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from timed(item, "teardown")


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """The test's own timer: pytest-timeout's `timeout` (or a test's `timeout` mark), for the
    test function alone (`timeout_func_only`, pyproject.toml). Takes over the "thread" method;
    leaves "signal" to pytest-timeout."""
    if settings.method != "thread" or not settings.timeout:
        return None
    item.cancel_timeout = arm(item, "call", settings.timeout)  # type: ignore[attr-defined]
    return True
