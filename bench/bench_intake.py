"""What a webhook costs the server: the channel's intake against a bare Sanic handler.

Each server runs in its own process (`_servers.py`), so its CPU time is read from
`/proc` apart from the load generator's. The load generator (this process) posts
signed webhooks, 10 at a time over kept-alive connections, and also serves the Graph API
stand-in the read receipts go to. A run is over when every webhook was answered 200 and, with
read receipts, every receipt reached the stand-in.

Pairs, each measured in the same run, alternating which goes first, medians of `ROUNDS`:

- messages with read receipts: `channel` vs `bare_receipts` (goal >= 0.8x);
- messages without read receipts: `channel_no_receipts` vs `bare` (goal >= 0.6x);
- statuses: `channel_no_receipts` vs `bare` (goal >= 0.9x);
- messages with read receipts through the durable intake: `channel_redis` (`queue: redis` on a
  redis-server of its own) vs `bare_receipts`. No goal: what storing each message in Redis
  before the 200 (and de-duplicating, resolving the person and pacing there) costs.

The ratio judged against the goal is the server's capacity: webhooks per second of server CPU,
ours / baseline (= baseline CPU per webhook / ours). Wall-clock webhooks per second are shown
too, but on 2 cores shared with the load generator they mostly measure the load generator. The
bot's turn does nothing here: what is measured is checking, parsing, queueing, de-duplicating and
the read receipt.

`python bench/bench_intake.py --profile` also records a py-spy profile of the channel under load
(bench/README.md, "Profiling").
"""

import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _harness import Row, print_table, save_results
from _servers import FakeGraph, ServerProcess, profile

from connectors.whatsapp.core.signature import SIGNATURE_HEADER, sign
from tests.conftest import APP_SECRET
from tests.support.processes import free_port
from tests.support.redis_server import redis_server
from tests.support.webhooks import encode, envelope, text_message

WEBHOOKS = 3000
WARMUP = 300
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))  # fewer for a quick look while profiling
"""7 like bench_turn.py: a round's ratio moves by +-15 % with this machine's speed, and the one full
collection a Rasa process makes now and then (0.3 s) lands in one run: 7 give the median room."""
CONCURRENCY = 10
SENDERS = 30
RUN_TIMEOUT = 60.0
_ids = itertools.count(1)


def message_webhooks(count: int) -> list[bytes]:
    """`count` webhooks of one text message each, unique ids, round robin over the senders."""
    bodies = []
    for index in range(count):
        sender = f"55119{index % SENDERS:08d}"
        payload, _ = text_message(sender, f"mensagem {next(_ids)}")
        bodies.append(encode(payload))
    return bodies


def status_webhooks(count: int) -> list[bytes]:
    """`count` webhooks of one status each (sent, delivered, read in turn)."""
    bodies = []
    for index in range(count):
        status: dict[str, Any] = {
            "id": f"wamid.OUT{next(_ids):012d}",
            "status": ("sent", "delivered", "read")[index % 3],
            "timestamp": "1732590000",
            "recipient_id": f"55119{index % SENDERS:08d}",
        }
        if index % 3 == 0:
            status["conversation"] = {"id": "c1", "origin": {"type": "service"}}
            status["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
        bodies.append(encode(envelope(statuses=[status])))
    return bodies


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu_seconds: float
    count: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_per_webhook(self) -> float:
        return self.cpu_seconds / self.count


async def load(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    graph: FakeGraph,
    bodies: Sequence[bytes],
    receipts: bool,
) -> Run:
    signed = [(body, sign(body, APP_SECRET)) for body in bodies]
    gate = asyncio.Semaphore(CONCURRENCY)
    graph_before = graph.posts

    async def post(body: bytes, signature: str) -> None:
        async with gate:
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            async with http.post(server.webhook_url, data=body, headers=headers) as answer:
                await answer.read()
                if answer.status != 200:
                    raise AssertionError(f"{server.kind} answered {answer.status}")

    cpu_before = server.cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(*(post(body, signature) for body, signature in signed))
    if receipts:
        await graph.wait_for(graph_before + len(bodies), RUN_TIMEOUT)
    seconds = time.perf_counter() - start
    if os.environ.get("BENCH_GC_STATS"):
        print(f"run {server.kind}: {time.time() - seconds:.1f}..{time.time():.1f}", file=sys.stderr)
    await asyncio.sleep(0.2)  # let the server finish its background work before reading its CPU
    return Run(seconds, server.cpu_seconds() - cpu_before, len(bodies))


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    ours: str
    baseline: str
    statuses: bool
    receipts: bool
    goal: float


CASES = (
    Case("messages, read receipts on", "channel", "bare_receipts", False, True, 0.8),
    Case("messages, read receipts off", "channel_no_receipts", "bare", False, False, 0.6),
    Case("statuses", "channel_no_receipts", "bare", True, False, 0.9),
    Case(
        "messages, queue: redis, read receipts on", "channel_redis", "bare_receipts", False, True, 0
    ),
)
"""A goal of 0: none, the ratio is reported (the price of durability)."""
RECEIPTS = ("channel", "bare_receipts", "channel_redis")
"""The kinds that send a read receipt per message (a run waits for them)."""


async def measure(servers: dict[str, ServerProcess], graph: FakeGraph) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=connector) as http:
        for server in servers.values():  # warm-up: imports, connection pools, JIT-free caches
            await load(http, server, graph, message_webhooks(WARMUP), server.kind in RECEIPTS)
        for case in CASES:
            wanted = os.environ.get("BENCH_CASES")  # "statuses;...": some cases, while profiling
            if wanted and case.name not in wanted.split(";"):
                continue
            ours_runs: list[Run] = []
            baseline_runs: list[Run] = []
            for round_ in range(ROUNDS):
                make = status_webhooks if case.statuses else message_webhooks
                order = [(case.ours, ours_runs), (case.baseline, baseline_runs)]
                for kind, runs in order if round_ % 2 == 0 else order[::-1]:
                    runs.append(
                        await load(http, servers[kind], graph, make(WEBHOOKS), case.receipts)
                    )
            results[case.name] = {
                "ours_per_second": statistics.median(r.per_second for r in ours_runs),
                "baseline_per_second": statistics.median(r.per_second for r in baseline_runs),
                "ours_cpu_ms": 1000 * statistics.median(r.cpu_per_webhook for r in ours_runs),
                "baseline_cpu_ms": 1000
                * statistics.median(r.cpu_per_webhook for r in baseline_runs),
                "round_ratios": [
                    baseline.cpu_per_webhook / ours.cpu_per_webhook
                    for ours, baseline in zip(ours_runs, baseline_runs, strict=True)
                ],
                "goal": case.goal,
                "ours": case.ours,
                "baseline": case.baseline,
            }
    return results


async def main(with_profile: bool) -> None:
    with redis_server() as redis_url:  # for `channel_redis`
        os.environ["BENCH_REDIS_URL"] = redis_url  # the servers' environment
        results = await measure_servers(with_profile)
    report(results)


async def measure_servers(with_profile: bool) -> dict[str, Any]:
    graph = FakeGraph()
    await graph.start()
    logs = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    kinds = ("channel", "channel_no_receipts", "bare", "bare_receipts", "channel_redis")
    servers = {
        kind: ServerProcess(kind, free_port(), graph.url, logs / f"{kind}.log") for kind in kinds
    }
    try:
        await asyncio.gather(*(server.ready() for server in servers.values()))
        if with_profile:
            recorder = profile(servers["channel"].process.pid, "channel", 15)
            connector = aiohttp.TCPConnector(limit=CONCURRENCY)
            async with aiohttp.ClientSession(connector=connector) as http:
                deadline = time.monotonic() + 14
                while time.monotonic() < deadline:
                    await load(http, servers["channel"], graph, message_webhooks(500), True)
            recorder.wait(60)
        return await measure(servers, graph)
    finally:
        for server in servers.values():
            server.stop()
        await graph.stop()


def report(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    verdicts = []
    for name, result in results.items():
        pair = f"{result['ours']} vs {result['baseline']}"
        ours_capacity = 1000 / result["ours_cpu_ms"]
        baseline_capacity = 1000 / result["baseline_cpu_ms"]
        rows += [
            Row(
                f"{name}: webhooks per server CPU second ({pair})",
                ours_capacity,
                baseline_capacity,
                "/s",
            ),
            Row(
                f"{name}: server CPU per webhook (lower is better)",
                result["ours_cpu_ms"],
                result["baseline_cpu_ms"],
                "ms",
            ),
            Row(
                f"{name}: wall-clock webhooks/s (load generator bound)",
                result["ours_per_second"],
                result["baseline_per_second"],
                "/s",
            ),
        ]
        # Judged within each round (two runs a second apart), then the median: this machine's
        # speed drifts by tens of percent over a minute, which a ratio of medians mixes in.
        ratio = statistics.median(result["round_ratios"])
        rows.insert(
            len(rows) - 2,
            Row(f"{name}: capacity, ours / bare within each round (median)", ratio, 1, "x"),
        )
        result["capacity_ratio"] = ratio
        if not result["goal"]:
            verdicts.append(f"{name} {ratio:.2f}x (no goal: the price of durability)")
            continue
        met = "meets" if ratio >= result["goal"] else "MISSES"
        verdicts.append(f"{name} {ratio:.2f}x ({met} the {result['goal']}x goal)")
    print_table(
        f"Intake: {WEBHOOKS} signed webhooks per run, {CONCURRENCY} at a time, {SENDERS} senders, "
        f"each server in its own process (medians of {ROUNDS} alternated runs)",
        rows,
        ratio="ours/baseline",
        conclusion="Conclusion (server capacity, ours/bare): " + "; ".join(verdicts) + ".",
    )
    save_results("intake", {"webhooks": WEBHOOKS, "rounds": ROUNDS, "cases": results})


if __name__ == "__main__":
    asyncio.run(main("--profile" in sys.argv))
