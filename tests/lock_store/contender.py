"""One process contending for one conversation's lock, as one `rasa run` instance would.

Run as `python -m tests.lock_store.contender ...` by the multi-process test and by
`bench/bench_lock_store.py`. Each of its turns enters `store.lock(conversation)`, as Rasa's
`Agent.handle_message` does, and inside it counts itself in a Redis counter of current holders:
a counter above 1 on entry is an overlap, two turns of one conversation running at once. Every
turn that ran appends `<name>:<turn>` to a Redis list; a turn whose lock raised `LockError` (Rasa
drops that message) is counted as lost. The bookkeeping lives in Redis, not in timestamps, so it
does not depend on clocks.

`hold` mode takes the lock once, prints "held" and sleeps, for the dead-holder test to SIGKILL it.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

OURS = "connectors.lock_store.AtomicRedisLockStore"


def keys(run: str) -> dict[str, str]:
    """Where a run keeps its bookkeeping (db 0, apart from the lock store's db)."""
    return {
        "go": f"contend:{run}:go",
        "holders": f"contend:{run}:holders",
        "overlaps": f"contend:{run}:overlaps",
        "ran": f"contend:{run}:ran",
        "lost": f"contend:{run}:lost",
    }


def make_store(kind: str, host: str, port: int, db: int) -> Any:
    """Our store loaded as endpoints.yml loads it, or Rasa's own RedisLockStore."""
    if kind == "ours":
        return LockStore.create(EndpointConfig(url=host, type=OURS, port=port, db=db))
    if kind == "rasa":
        return RedisLockStore(host=host, port=port, db=db)
    raise ValueError(kind)


async def contend(arguments: argparse.Namespace) -> dict[str, Any]:
    store = make_store(arguments.store, arguments.host, arguments.port, arguments.db)
    book = redis.asyncio.Redis(host=arguments.host, port=arguments.port, db=0)
    names = keys(arguments.run)
    print("ready", flush=True)
    await book.blpop([names["go"]], timeout=60)  # every contender starts at once
    started = time.perf_counter()
    for turn in range(arguments.turns):
        try:
            async with store.lock(
                arguments.conversation,
                lock_lifetime=arguments.lifetime,
                wait_time_in_seconds=arguments.wait,
            ):
                if await book.incr(names["holders"]) > 1:
                    await book.incr(names["overlaps"])
                await book.rpush(names["ran"], f"{arguments.name}:{turn}")
                await asyncio.sleep(arguments.hold)
                await book.decr(names["holders"])
        except LockError:
            await book.incr(names["lost"])
    elapsed = time.perf_counter() - started
    await book.close()
    if arguments.store == "ours":
        await store.close()
    return {"name": arguments.name, "seconds": elapsed}


async def hold(arguments: argparse.Namespace) -> None:
    store = make_store(arguments.store, arguments.host, arguments.port, arguments.db)
    async with store.lock(arguments.conversation, lock_lifetime=arguments.lifetime):
        print("held", flush=True)
        await asyncio.sleep(3600)


@dataclass(frozen=True)
class Contention:
    """What a run of several contending processes did."""

    expected: int  # turns asked for
    ran: list[str]  # `<name>:<turn>` of every turn that ran, in the order they entered
    overlaps: int  # turns that entered while another turn held the lock
    lost: int  # turns whose lock raised LockError
    seconds: float  # from "go" until the last process finished (or was killed)
    finished: bool = True  # False: still waiting after `timeout` seconds, killed

    @property
    def missing(self) -> int:
        return self.expected - len(set(self.ran))


def run_contenders(
    kind: str,
    redis_url: str,
    *,
    processes: int = 4,
    turns: int = 25,
    hold_seconds: float = 0.002,
    wait_seconds: float = 1.0,
    lifetime: float = 60.0,
    timeout: float = 120.0,
    kill_after_timeout: bool = False,
) -> Contention:
    """Start `processes` contenders on one conversation, let them go at once, collect the books.

    After `timeout` seconds the run fails, or with `kill_after_timeout` the contenders are killed
    and the books so far are returned with `finished=False`.
    """
    from tests.support.processes import PROJECT_ROOT, child_env

    address = urlsplit(redis_url)
    host, port = address.hostname or "127.0.0.1", int(address.port or 6379)
    run = uuid.uuid4().hex[:8]
    names = keys(run)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.lock_store.contender",
                "contend",
                f"--store={kind}",
                f"--host={host}",
                f"--port={port}",
                f"--run={run}",
                f"--name=p{index}",
                f"--conversation=conversation-{run}",
                f"--turns={turns}",
                f"--hold={hold_seconds}",
                f"--wait={wait_seconds}",
                f"--lifetime={lifetime}",
            ],
            cwd=PROJECT_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    book = redis.Redis(host=host, port=port, db=0)
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a contender did not start (exit {child.wait(timeout)})")
        started = time.perf_counter()
        book.rpush(names["go"], *["go"] * processes)
        finished = True
        for child in children:
            try:
                child.wait(max(0.0, started + timeout - time.perf_counter()))
            except subprocess.TimeoutExpired:
                if not kill_after_timeout:
                    raise
                finished = False
                break
            if child.returncode != 0:
                raise RuntimeError(f"a contender failed with exit code {child.returncode}")
        seconds = time.perf_counter() - started
        return Contention(
            expected=processes * turns,
            ran=[item.decode() for item in book.lrange(names["ran"], 0, -1)],
            overlaps=int(book.get(names["overlaps"]) or 0),
            lost=int(book.get(names["lost"]) or 0),
            seconds=seconds,
            finished=finished,
        )
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
        book.delete(*names.values())
        book.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["contend", "hold"])
    parser.add_argument("--store", choices=["ours", "rasa"], default="ours")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=int, default=1)
    parser.add_argument("--run", default="run")
    parser.add_argument("--name", default="p0")
    parser.add_argument("--conversation", default="one-conversation")
    parser.add_argument("--turns", type=int, default=25)
    parser.add_argument("--hold", type=float, default=0.002, help="seconds a turn holds the lock")
    parser.add_argument("--lifetime", type=float, default=60.0)
    parser.add_argument("--wait", type=float, default=1.0, help="wait_time_in_seconds")
    arguments = parser.parse_args()
    if arguments.mode == "hold":
        asyncio.run(hold(arguments))
        return
    print(json.dumps(asyncio.run(contend(arguments))), flush=True)


if __name__ == "__main__":
    main()
