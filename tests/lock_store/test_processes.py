"""Several real processes contending for one conversation, and a holder that is SIGKILLed.

Rasa's own RedisLockStore under the same workload (overlapping and lost turns) is in
bench/bench_lock_store.py: how often it fails depends on timing, so it is measured, not asserted.
"""

import asyncio
import collections
import itertools
import sys
import time
from urllib.parse import urlsplit

from connectors.lock_store import AtomicRedisLockStore
from tests.lock_store.contender import run_contenders
from tests.support.processes import PROJECT_ROOT, child_env


def test_four_processes_on_one_conversation_never_hold_it_together(redis_url: str) -> None:
    result = run_contenders("ours", redis_url, processes=4, turns=25, hold_seconds=0.002)

    assert result.overlaps == 0
    assert result.lost == 0
    assert len(result.ran) == 100 and result.missing == 0  # every turn ran, once
    # each process's own turns entered in its order
    by_process = collections.defaultdict(list)
    for entry in result.ran:
        name, turn = entry.split(":")
        by_process[name].append(int(turn))
    assert all(turns == list(range(25)) for turns in by_process.values())
    assert len(by_process) == 4
    # and the processes really contended: the conversation changed hands many times
    hand_overs = sum(a.split(":")[0] != b.split(":")[0] for a, b in itertools.pairwise(result.ran))
    assert hand_overs >= 10


async def test_a_sigkilled_holder_blocks_the_conversation_for_one_lifetime_at_most(
    redis_url: str,
) -> None:
    lifetime = 2.0
    port = int(urlsplit(redis_url).port or 0)
    conversation = f"killed-{time.time_ns()}"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.lock_store.contender",
        "hold",
        f"--port={port}",
        f"--conversation={conversation}",
        f"--lifetime={lifetime}",
        cwd=PROJECT_ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
    )
    store = AtomicRedisLockStore(host="127.0.0.1", port=port, db=1)
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"held"

        async def next_turn() -> float:
            async with store.lock(conversation, lock_lifetime=lifetime):
                return time.monotonic()

        waiting = asyncio.create_task(next_turn())
        # alive for longer than the lifetime: its renewed ticket still holds the conversation
        await asyncio.sleep(lifetime * 1.5)
        assert not waiting.done()

        holder.kill()  # SIGKILL: no finally, no release
        await holder.wait()
        killed_at = time.monotonic()
        acquired_at = await asyncio.wait_for(waiting, lifetime * 4)
        # at most one lifetime after its last renewal, plus one check (a third of the lifetime)
        assert acquired_at - killed_at < lifetime + lifetime / 3 + 1.0
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await store.close()
