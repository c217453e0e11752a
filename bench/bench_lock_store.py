"""Several processes, one conversation: AtomicRedisLockStore against Rasa's own RedisLockStore.

The workload of `tests/lock_store/test_processes.py`, as several `rasa run` instances (or
`SANIC_WORKERS` > 1) would produce it: 4 processes x 25 turns, all on one conversation id, all
started at the same moment, each turn entering `store.lock(conversation)` as
`Agent.handle_message` does and holding it 2 ms. Inside the lock a turn counts itself in a Redis
counter of current holders (`tests/lock_store/contender.py`), so the books do not depend on clocks:

- overlapping turns: entered while another turn of the conversation was inside, the bug of
  https://github.com/RasaHQ/rasa/issues/9213 (two turns on one tracker: one's events are lost);
- lost turns: the lock raised `LockError` (Rasa drops the message);
- turns that never ran (lost, or still waiting when the run was stopped);
- wall time and turns per second.

Rasa's store is `rasa.core.lock_store.RedisLockStore` from the installed Rasa 3.6.21, ours is loaded
through `LockStore.create(EndpointConfig(type="connectors.lock_store.AtomicRedisLockStore", ...))`.
Both get the same `wait_time_in_seconds` (1 s, what Rasa passes, then 0.01 s, a tight poll that
favours Rasa's store) and a ticket lifetime of 2 s instead of Rasa's 60 s: a ticket that Rasa's
store leaves behind (overwritten by another process's write) blocks the conversation until it
expires, so with 60 s the run would take minutes. The failures of Rasa's store depend on timing;
they vary from run to run (one run per case, to stay within a minute). A run is stopped after
15 s: a waiter of Rasa's store whose ticket was overwritten waits for as long as the lock's key
exists (`_acquire_lock` only gives up when the whole lock is gone), and a racing `update_lock` can
save an empty ticket list back after the last `delete_lock`, with no expiry: seen after such a run,
`lock:<id>` = `{"tickets": []}` with no TTL, and the waiters stuck for good.
"""

import shutil
import time

from _harness import Row, print_table

from tests.lock_store.contender import Contention, run_contenders
from tests.support.redis_server import redis_server

PROCESSES = 4
TURNS = 25
HOLD_SECONDS = 0.002
LIFETIME = 2.0
RUNS = 1
TIMEOUT = 15.0


def one_run(url: str, kind: str, wait_seconds: float) -> Contention:
    return run_contenders(
        kind,
        url,
        processes=PROCESSES,
        turns=TURNS,
        hold_seconds=HOLD_SECONDS,
        wait_seconds=wait_seconds,
        lifetime=LIFETIME,
        timeout=TIMEOUT,
        kill_after_timeout=True,
    )


def rows(label: str, ours: list[Contention], rasa: list[Contention]) -> tuple[list[Row], Row]:
    def summed(runs: list[Contention], field: str) -> float:
        return float(sum(getattr(run, field) for run in runs))

    correctness = [
        Row(f"{label}: overlapping turns", summed(ours, "overlaps"), summed(rasa, "overlaps"), ""),
        Row(f"{label}: lost turns (LockError)", summed(ours, "lost"), summed(rasa, "lost"), ""),
        Row(
            f"{label}: turns that never ran (lost, or still waiting when stopped)",
            summed(ours, "missing"),
            summed(rasa, "missing"),
            "",
        ),
        Row(
            f"{label}: runs stopped after {TIMEOUT:.0f} s",
            float(sum(not run.finished for run in ours)),
            float(sum(not run.finished for run in rasa)),
            "",
        ),
    ]

    def throughput(runs: list[Contention]) -> float:
        return sum(len(set(run.ran)) for run in runs) / sum(run.seconds for run in runs)

    return correctness, Row(f"{label}: throughput", throughput(ours), throughput(rasa), "turns/s")


def main() -> None:
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (scripts/system-deps): nothing to measure.")
        return
    started = time.perf_counter()
    correctness: list[Row] = []
    speed: list[Row] = []
    with redis_server() as url:
        for wait_seconds in (1.0, 0.01):
            label = f"wait_time {wait_seconds:g} s"
            ours: list[Contention] = []
            rasa: list[Contention] = []
            for _ in range(RUNS):  # alternated, so that load on the machine hits both alike
                ours.append(one_run(url, "ours", wait_seconds))
                rasa.append(one_run(url, "rasa", wait_seconds))
            found, rate = rows(label, ours, rasa)
            correctness += found
            speed.append(rate)
    runs = f"{RUNS} run{'s' if RUNS > 1 else ''} per case"
    workload = f"{PROCESSES} processes x {TURNS} turns on one conversation, {runs}"
    print_table(
        f"Correctness: {workload} (totals)",
        correctness,
        conclusion=(
            "Conclusion: AtomicRedisLockStore never let two turns of the conversation run at once "
            "and ran every turn; Rasa's RedisLockStore overlapped "
            f"{sum(row.baseline for row in correctness if 'overlapping' in row.case):.0f} and "
            f"never ran {sum(row.baseline for row in correctness if 'never ran' in row.case):.0f}"
            f" of {2 * RUNS * PROCESSES * TURNS} turns; "
            f"{sum(row.baseline for row in correctness if 'runs stopped' in row.case):.0f} of "
            f"{2 * RUNS} runs were still waiting when stopped."
        ),
    )
    print_table(
        f"Throughput: {workload}",
        speed,
        ratio="ours/baseline",
        conclusion=(
            "Conclusion: ours serves the contended conversation "
            + " and ".join(f"{row.ours / row.baseline:.1f}x" for row in speed)
            + " as fast (a release wakes the next waiter at once; Rasa's waiters poll, wait for "
            "tickets its overwrites leave behind to expire, or wait for good)."
        ),
    )
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
