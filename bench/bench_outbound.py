"""Sending: bot answers through the channel against a raw aiohttp loop, to the same Graph stand-in.

The Graph API stand-in runs in a process of its own (`_servers.py graph`) and answers every
`POST /messages` after the same fixed latency. This process sends `SENDS` messages, `CONCURRENCY`
at a time, three ways, alternating which goes first (medians of `ROUNDS`):

- `Outbound.send`: what a bot answer goes through (rendering, pacing, the Graph client, failure
  handling); pacing is set far above the sends' rate so that it is measured but never waits;
- `GraphClient.send_message`: the client alone, on pre-rendered bodies;
- baseline: `session.post(url, json=body, headers=...)` on one shared `aiohttp.ClientSession`,
  reading the JSON answer: the floor of any client.

Two latencies: 20 ms (a loopback stand-in for Meta's answer time) for the goal (>= 0.95x the
baseline's sends per second), and 0 ms, where the client's own CPU is what limits the rate.
This process's CPU per send is shown beside (`time.process_time`).
"""

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from _harness import Row, print_table, save_results
from _servers import ServerProcess

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.outbound import Outbound
from connectors.whatsapp.core.pacing import LocalPacer
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.support.processes import free_port

SENDS = 2000
CONCURRENCY = 20
ROUNDS = 3
LATENCIES = (0.02, 0.0)
GOAL = 0.95

Sender = Callable[[int], Awaitable[object]]


def recipient(index: int) -> str:
    return f"55119{index % 200:08d}"


def body(index: int) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(index),
        "type": "text",
        "text": {"body": f"Resposta número {index}", "preview_url": False},
    }


async def timed(send: Sender) -> tuple[float, float]:
    """(sends per second, CPU seconds per send) of `SENDS` sends, `CONCURRENCY` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            await send(index)

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(SENDS)))
    seconds = time.perf_counter() - start
    return SENDS / seconds, (time.process_time() - cpu) / SENDS


async def measure(graph_url: str) -> dict[str, dict[str, float]]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    session = aiohttp.ClientSession(connector=connector)
    url = f"{graph_url}/v23.0/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph_url)
    outbound = Outbound(
        client,
        default_phone_number_id=PHONE_NUMBER_ID,
        pacer=LocalPacer(1_000_000, pair_interval=0),
    )
    bodies = [body(index) for index in range(SENDS)]

    async def raw(index: int) -> object:
        async with session.post(url, json=bodies[index], headers=headers) as answer:
            return await answer.json()

    async def graph_client(index: int) -> object:
        return await client.send_message(PHONE_NUMBER_ID, bodies[index])

    async def channel(index: int) -> object:
        return await outbound.send(recipient(index), {"text": f"Resposta número {index}"})

    senders: dict[str, Sender] = {"outbound": channel, "client": graph_client, "raw": raw}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in senders}
    try:
        for send in senders.values():  # warm-up: connections and first-call costs
            await send(0)
        for round_ in range(ROUNDS):
            names = list(senders) if round_ % 2 == 0 else list(senders)[::-1]
            for name in names:
                samples[name].append(await timed(senders[name]))
    finally:
        await outbound.close()
        await session.close()
    return {
        name: {
            "per_second": statistics.median(rate for rate, _ in runs),
            "cpu_us": 1e6 * statistics.median(cpu for _, cpu in runs),
        }
        for name, runs in samples.items()
    }


async def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
    results: dict[str, Any] = {}
    for latency in LATENCIES:
        port = free_port()
        graph = ServerProcess("graph", port, str(latency), logs / f"graph-{latency}.log")
        try:
            await graph.ready()
            results[f"{latency * 1000:g} ms"] = await measure(graph.url)
        finally:
            graph.stop()
    report(results)


def report(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    verdicts = []
    for latency, figures in results.items():
        raw = figures["raw"]
        for name, label in (("outbound", "Outbound.send"), ("client", "GraphClient.send_message")):
            rows.append(
                Row(
                    f"{label} vs raw aiohttp, {latency} Graph latency: sends/s",
                    figures[name]["per_second"],
                    raw["per_second"],
                    "/s",
                )
            )
            rows.append(
                Row(
                    f"{label} vs raw aiohttp, {latency}: client CPU per send (lower is better)",
                    figures[name]["cpu_us"],
                    raw["cpu_us"],
                    "us",
                )
            )
        ratio = figures["outbound"]["per_second"] / raw["per_second"]
        figures["ratio"] = ratio
        verdicts.append(f"{ratio:.2f}x the raw loop's sends/s at {latency}")
    first = next(iter(results.values()))["ratio"]
    verdict = "meets" if first >= GOAL else "MISSES"
    print_table(
        f"Outbound: {SENDS} text answers, {CONCURRENCY} at a time, Graph stand-in in its own "
        f"process (medians of {ROUNDS} alternated runs)",
        rows,
        ratio="ours/baseline",
        conclusion=f"Conclusion: Outbound.send reaches {'; '.join(verdicts)} ({verdict} the "
        f"{GOAL}x goal at the realistic latency).",
    )
    save_results("outbound", {"sends": SENDS, "concurrency": CONCURRENCY, "latencies": results})


if __name__ == "__main__":
    asyncio.run(main())
