"""`queue: redis`: what a second instance buys, and what durability costs on one instance.

Two questions, answered in one run, each instance a separate process serving the real
`WebhookEndpoint` over HTTP on 127.0.0.1 (an aiohttp app, the shape of any adapter), with the
signature checked and one throwaway redis-server:

1. Scale-out. The same workload on two instances vs one, both `queue: redis`: 80 users chatting
   at once, each writing again once the bot answered (3 rounds of 80 signed webhooks, sent round
   robin by a load-balancing client, 20 at a time; the next round once every turn of the last
   one finished). A turn stands for a Rasa
   turn: CPU work in the event loop (policy prediction and tracker handling: 12 ms, the low end
   of a Rasa 3.6 turn) plus a wait (the action server), so one process is bound by its CPU as
   Rasa is. Reported: the time from the first webhook to the last
   turn finished. Goal: two instances at least 1.7x as fast.
2. Durability. One instance, `queue: redis` vs `queue: memory`: how long Meta waits for its 200
   (p50, p99: with redis the messages are stored in Redis before the answer) and the server's CPU
   time per webhook, turns included (trivial turns here, so the queue's own cost shows).

Both machines' cores are shared with whatever else runs; the load average is printed. Ratios
come from the same run, so they hold better than the absolute figures.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis
from _harness import PROJECT_ROOT, Row, percentile, print_table

from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.processes import free_port, wait_http
from tests.support.redis_server import redis_server
from tests.support.webhooks import encode, text_message

CONVERSATIONS = 80
MESSAGES = 3
TURN_CPU_MS = 12.0
TURN_WAIT_MS = 20.0
ACK_WEBHOOKS = 400
ACK_CONCURRENCY = 10
ROUNDS = 3


# -- an instance (a child process) -----------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """One instance: the endpoint on an aiohttp server; /stats tells CPU time and turns done."""
    from aiohttp import web

    config = WhatsAppConfig.from_mapping(
        {
            "access_token": ACCESS_TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
            "verify_token": VERIFY_TOKEN,
            "app_secret": APP_SECRET,
            "api_base_url": "http://127.0.0.1:9",
            "mark_as_read": False,
            "outbox_retry_seconds": 0,
            "queue": args.queue,
            "redis_url": args.redis_url,
            "max_pending": 100_000,
        }
    )
    done = 0

    async def deliver(bot_input: BotInput) -> None:
        nonlocal done
        if args.cpu_ms:
            until = time.process_time() + args.cpu_ms / 1000
            while time.process_time() < until:
                pass
        if args.wait_ms:
            await asyncio.sleep(args.wait_ms / 1000)
        done += 1

    endpoint = WebhookEndpoint(config, deliver)

    async def webhook(request: web.Request) -> web.Response:
        neutral = WebhookRequest("POST", await request.read(), dict(request.headers))
        answer = await endpoint.receive(neutral)
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"cpu": time.process_time(), "done": done})

    async def started(_: web.Application) -> None:
        await endpoint.start()

    async def stopped(_: web.Application) -> None:
        await endpoint.drain(1)
        await endpoint.close()

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/stats", stats)
    app.on_startup.append(started)  # type: ignore[arg-type]
    app.on_cleanup.append(stopped)  # type: ignore[arg-type]
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


@dataclass
class Instance:
    url: str
    process: "subprocess.Popen[bytes]"


@contextmanager
def instances(
    count: int, queue: str, redis_url: str, cpu_ms: float, wait_ms: float
) -> Iterator[list[Instance]]:
    started = []
    try:
        for _ in range(count):
            port = free_port()
            args = [sys.executable, __file__, "serve", "--queue", queue, "--redis-url", redis_url]
            args += ["--port", str(port), "--cpu-ms", str(cpu_ms), "--wait-ms", str(wait_ms)]
            process = subprocess.Popen(
                args,
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            )
            started.append(Instance(f"http://127.0.0.1:{port}", process))
        for instance in started:
            wait_http(instance.url + "/stats", 60, instance.process)
        yield started
    finally:
        for instance in started:
            instance.process.terminate()
        for instance in started:
            instance.process.wait(20)


# -- the client (this process) ---------------------------------------------------------------------


def webhooks(conversations: int, messages: int, run: int) -> list[tuple[bytes, str]]:
    """Signed bodies, message-major, so that each conversation's messages arrive spread out."""
    bodies = []
    for index in range(messages):
        for conversation in range(conversations):
            sender = f"55119{run:02d}{conversation:06d}"
            body = encode(text_message(sender, f"mensagem {index}")[0])
            bodies.append((body, sign(body, APP_SECRET)))
    return bodies


async def stats(http: aiohttp.ClientSession, instance: Instance) -> dict[str, Any]:
    async with http.get(instance.url + "/stats") as response:
        found: dict[str, Any] = await response.json()
        return found


async def send_all(
    http: aiohttp.ClientSession,
    targets: Sequence[Instance],
    bodies: Sequence[tuple[bytes, str]],
    concurrency: int,
) -> list[float]:
    """POST every body (round robin over `targets`), `concurrency` at a time; answer times."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(bodies):
            index = next_index
            next_index += 1
            body, signature = bodies[index]
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
            url = targets[index % len(targets)].url + "/webhook"
            while True:
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                    break
                await asyncio.sleep(0.05)  # 503: Meta would redeliver

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def wait_done(
    http: aiohttp.ClientSession, targets: Sequence[Instance], expected: int, before: int
) -> None:
    deadline = time.monotonic() + 300
    while True:
        done = sum([(await stats(http, i))["done"] for i in targets]) - before
        if done >= expected:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {expected} turns done")
        await asyncio.sleep(0.02)


async def scale_out(redis_url: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median seconds for the workload on two instances and on one; and the cores they got
    (their CPU seconds over the wall time: below 2 with two instances, others used the cores)."""
    times: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {1: [], 2: []}
    async with aiohttp.ClientSession() as http:
        for run in range(ROUNDS):
            for count in (2, 1):
                redis.Redis.from_url(redis_url).flushall()
                with instances(count, "redis", redis_url, TURN_CPU_MS, TURN_WAIT_MS) as targets:
                    bodies = webhooks(CONVERSATIONS, MESSAGES, run * 2 + count)
                    first = [await stats(http, i) for i in targets]
                    before = sum(s["done"] for s in first)
                    started = time.perf_counter()
                    for round_ in range(MESSAGES):
                        batch = bodies[round_ * CONVERSATIONS : (round_ + 1) * CONVERSATIONS]
                        await send_all(http, targets, batch, concurrency=20)
                        await wait_done(http, targets, CONVERSATIONS * (round_ + 1), before)
                    wall = time.perf_counter() - started
                    last = [await stats(http, i) for i in targets]
                    times[count].append(wall)
                    cpu = sum(b["cpu"] - a["cpu"] for a, b in zip(first, last, strict=True))
                    cores[count].append(cpu / wall)
    return (
        (statistics.median(times[2]), statistics.median(times[1])),
        (statistics.median(cores[2]), statistics.median(cores[1])),
    )


async def durability(redis_url: str) -> dict[str, dict[str, float]]:
    """Per queue mode: ack p50/p99 (s) and CPU seconds per webhook, pooled over the rounds."""
    samples: dict[str, list[float]] = {"redis": [], "memory": []}
    cpu: dict[str, list[float]] = {"redis": [], "memory": []}
    async with aiohttp.ClientSession() as http:
        for run in range(ROUNDS):
            for queue in ("redis", "memory"):
                redis.Redis.from_url(redis_url).flushall()
                with instances(1, queue, redis_url, 0, 0) as targets:
                    warm = webhooks(10, 2, 90 + run)
                    await send_all(http, targets, warm, ACK_CONCURRENCY)
                    await wait_done(http, targets, len(warm), 0)
                    bodies = webhooks(ACK_WEBHOOKS // 4, 4, run * 2 + (queue == "redis"))
                    before = await stats(http, targets[0])
                    samples[queue] += await send_all(http, targets, bodies, ACK_CONCURRENCY)
                    await wait_done(http, targets, len(bodies), before["done"])
                    after = await stats(http, targets[0])
                    cpu[queue].append((after["cpu"] - before["cpu"]) / len(bodies))
    return {
        queue: {
            "p50": percentile(samples[queue], 0.5),
            "p99": percentile(samples[queue], 0.99),
            "cpu": statistics.median(cpu[queue]),
        }
        for queue in samples
    }


async def main() -> None:
    with redis_server() as redis_url:
        (two, one), (cores_two, cores_one) = await scale_out(redis_url)
        modes = await durability(redis_url)
    load = os.getloadavg()[0]
    turns = CONVERSATIONS * MESSAGES
    print_table(
        f"Scale-out, queue: redis: {turns} turns ({CONVERSATIONS} users x {MESSAGES} rounds), "
        f"each {TURN_CPU_MS:g} ms CPU + {TURN_WAIT_MS:g} ms wait; {os.cpu_count()} cores, "
        f"load {load:.1f}",
        [
            Row("time to answer every message", two, one, "s"),
            Row("turns per second", turns / two, turns / one, ""),
            Row("cores the instances used (CPU s / wall s)", cores_two, cores_one, ""),
        ],
        ratio="baseline/ours",
        conclusion=(
            f"ours = two instances, baseline = one: {one / two:.2f}x as fast with two "
            f"(goal >= 1.7x; the last two rows read inverted: below 1 means more), having got "
            f"{cores_two / cores_one:.2f}x the CPU: {one / two / (cores_two / cores_one):.0%} of "
            f"the extra CPU became throughput. The client, Redis and whatever else runs share "
            f"the {os.cpu_count()} cores, so two instances get a whole core each only on a "
            f"machine with cores to spare."
        ),
    )
    redis_mode, memory_mode = modes["redis"], modes["memory"]
    print_table(
        f"Durability on one instance: {ACK_WEBHOOKS} signed webhooks x {ROUNDS} rounds, "
        f"{ACK_CONCURRENCY} at a time",
        [
            Row("200 answered, p50", redis_mode["p50"] * 1e3, memory_mode["p50"] * 1e3, "ms"),
            Row("200 answered, p99", redis_mode["p99"] * 1e3, memory_mode["p99"] * 1e3, "ms"),
            Row(
                "server CPU per webhook (turn included)",
                redis_mode["cpu"] * 1e6,
                memory_mode["cpu"] * 1e6,
                "us",
            ),
        ],
        conclusion=(
            "ours = queue: redis (stored in Redis before the 200, any instance runs it, a crash "
            "loses nothing), baseline = queue: memory (answered at once, lost if the process "
            "dies): the price of durability per webhook."
        ),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    child = commands.add_parser("serve")
    child.add_argument("--queue", required=True)
    child.add_argument("--redis-url", required=True)
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--cpu-ms", type=float, default=0)
    child.add_argument("--wait-ms", type=float, default=0)
    parsed = parser.parse_args()
    if parsed.command == "serve":
        serve(parsed)
    else:
        asyncio.run(main())
