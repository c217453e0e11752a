"""The servers the benchmarks measure, each run in its own process (`python bench/_servers.py`).

Each server runs in a process of its own so that its CPU time can be read from `/proc`
without the load generator's (see `process_cpu_seconds`). Kinds:

- `channel`: `connectors.whatsapp.WhatsAppInput` in Rasa's own Sanic app
  (`rasa.core.run.configure_app`, API off), read receipts with the typing indicator on, and a
  stand-in agent whose turn does nothing (so the intake is what is measured);
- `channel_no_receipts`: the same with `mark_as_read: false`;
- `bare`: the floor: a bare Sanic handler that checks the signature (HMAC-SHA256 of the raw body,
  which no correct handler can skip), decodes the JSON and answers 200; mounted as a Rasa input
  channel in the same Rasa Sanic app, so that both pay the same framework and middlewares;
- `bare_receipts`: the same, plus one read receipt per message, posted after the answer through
  one shared aiohttp session (what the channel does with read receipts on, by hand);
- `channel_redis`: `channel` with the durable intake, `queue: redis` (and so de-duplication, the
  identity store and pacing in Redis) on the redis-server named by `BENCH_REDIS_URL`.
"""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import _harness  # noqa: F401  (quiet logs, the project root on the path)
from aiohttp import web

from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.processes import free_port

KINDS = ("channel", "channel_no_receipts", "bare", "bare_receipts", "channel_redis")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """The CPU time of every thread of process `pid` so far, in nanoseconds' resolution.

    `/proc/<pid>/task/<tid>/schedstat` starts with the time the thread ran, in ns;
    `/proc/<pid>/stat` counts in clock ticks (10 ms), 2 % of a 0.5 s run, which made two runs'
    ratio move by up to 4 % on its own. The ticks are the fallback where schedstat is missing.
    (A thread that ended between two readings drops out of the sum: the servers keep theirs.)
    """
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, PermissionError, IndexError, ValueError):
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def channel_config(graph_url: str, **overrides: Any) -> dict[str, Any]:
    """The channel's credentials for a benchmark: the Graph stand-in, no rate pacing in the way."""
    values: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "api_base_url": graph_url,
        # The benchmarks send faster than Meta's 80/s: pacing would measure Meta's limit, not us.
        "max_messages_per_second": 1_000_000,
        "pair_interval_seconds": 0,
    }
    values.update(overrides)
    return values


def profile(pid: int, name: str, seconds: int) -> "subprocess.Popen[bytes]":
    """py-spy on process `pid` for `seconds`, into bench/profiles/<name>.txt (bench/README.md,
    "Profiling"); the benchmarks' `--profile`."""
    output = Path(__file__).resolve().parent / "profiles"
    output.mkdir(exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(seconds)]
    return subprocess.Popen([*command, "--format", "raw", "--output", str(output / f"{name}.txt")])


class NoTurnAgent:
    """Rasa's `app.ctx.agent` whose turn does nothing: the intake alone is measured."""

    async def handle_message(self, message: Any) -> None:
        return None


def channel_app(graph_url: str, mark_as_read: bool, **overrides: Any) -> Any:
    from rasa.core.run import configure_app

    from connectors.whatsapp.adapters.rasa_channel import WhatsAppInput
    from connectors.whatsapp.core.config import WhatsAppConfig

    values = channel_config(graph_url, mark_as_read=mark_as_read, **overrides)
    config = WhatsAppConfig.from_mapping(values)
    app = configure_app([WhatsAppInput(config)], enable_api=False)
    app.ctx.agent = NoTurnAgent()
    return app


def bare_app(graph_url: str, receipts: bool) -> Any:
    """A bare webhook handler as a Rasa input channel, in the same Rasa Sanic app as ours.

    Same app, same middlewares (Rasa's CORS, Sanic's request handling): the difference with
    `channel` is our code alone.
    """
    import aiohttp
    from rasa.core.channels.channel import InputChannel
    from rasa.core.run import configure_app
    from sanic import Blueprint, response
    from sanic.request import Request
    from sanic.response import HTTPResponse

    from connectors.whatsapp.core.signature import SIGNATURE_HEADER, SignatureCheck
    from connectors.whatsapp.core.signature import check_signature as check

    messages_url = f"{graph_url}/v23.0/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    state: dict[str, Any] = {"tasks": set()}

    async def receipt(message_id: str) -> None:
        if "session" not in state:  # one shared session, made on the serving loop
            state["session"] = aiohttp.ClientSession()
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
            "typing_indicator": {"type": "text"},
        }
        async with state["session"].post(messages_url, json=body, headers=headers) as answer:
            await answer.read()

    class BareInput(InputChannel):  # type: ignore[misc]  # Rasa is untyped
        @classmethod
        def name(cls) -> str:
            return "bare"

        def blueprint(self, on_new_message: Any) -> Blueprint:
            bare = Blueprint("bare_webhook", __name__)

            async def health(_: Request) -> HTTPResponse:
                return response.text("ok")

            async def webhook(request: Request) -> HTTPResponse:
                body = request.body
                signature = request.headers.get(SIGNATURE_HEADER)
                if check(body, signature, APP_SECRET) is not SignatureCheck.VALID:
                    return response.text("bad signature", status=403)
                payload = json.loads(body)
                if receipts:
                    loop = asyncio.get_running_loop()
                    for entry in payload["entry"]:
                        for change in entry["changes"]:
                            for message in change["value"].get("messages", ()):
                                task = loop.create_task(receipt(message["id"]))
                                state["tasks"].add(task)
                                task.add_done_callback(state["tasks"].discard)
                return response.text("EVENT_RECEIVED")

            bare.add_route(health, "/", methods=["GET"])
            bare.add_route(webhook, "/webhook", methods=["POST"])
            return bare

    return configure_app([BareInput()], enable_api=False)


class FakeGraph:
    """The Graph API stand-in, in the load generator's process: counts POSTs to /messages (all,
    and the bot messages per recipient) and answers like Meta, after `latency` seconds."""

    def __init__(self, latency: float = 0.0) -> None:
        self.posts = 0
        self.latency = latency
        self.url = ""
        self.by_recipient: dict[str, int] = {}
        self._arrived: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if body.get("status") == "read":
            return web.json_response({"success": True})
        recipient = str(body.get("to") or body.get("recipient"))
        self.by_recipient[recipient] = self.by_recipient.get(recipient, 0) + 1
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": f"wamid.BENCH{self.posts:010d}"}],
            }
        )

    async def start(self, port: int | None = None) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = port or free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for_recipient(self, recipient: str, count: int, timeout: float) -> None:
        """Wait until `count` bot messages (read receipts left out) were sent to `recipient`."""
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: self.by_recipient.get(recipient, 0) >= count),
                timeout,
            )

    async def wait_for(self, posts: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.posts < posts:
            if time.monotonic() > deadline:
                raise AssertionError(f"{posts} Graph API requests expected, got {self.posts}")
            await asyncio.sleep(0.002)


def ready_path(kind: str) -> str:
    return "/webhooks/whatsapp/" if kind.startswith("channel") else "/webhooks/bare/"


def webhook_path(kind: str) -> str:
    return ready_path(kind) + "webhook"


class ServerProcess:
    """One benchmarked server in a subprocess: its URL and its CPU time."""

    def __init__(self, kind: str, port: int, graph_url: str, log: Path) -> None:
        self.kind = kind
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, __file__, kind, str(port), graph_url],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def webhook_url(self) -> str:
        return self.url + webhook_path(self.kind)

    def cpu_seconds(self) -> float:
        """CPU time of the server process so far (`process_cpu_seconds`)."""
        return process_cpu_seconds(self.process.pid)

    async def ready(self, timeout: float = 120.0) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}")
                try:
                    async with http.get(self.url + ready_path(self.kind)) as answer:
                        if answer.status < 500:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.kind} server did not start")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


async def serve_graph(port: int, latency: float) -> None:
    """The Graph API stand-in as a process of its own (the outbound benchmark)."""
    graph = FakeGraph(latency)
    await graph.start(port)
    await asyncio.Event().wait()


def serve(kind: str, port: int, graph_url: str, environ: Mapping[str, str]) -> None:
    from sanic import Sanic

    Sanic.test_mode = True  # Rasa names every app "rasa_server"
    logging.basicConfig(level=environ.get("BENCH_LOG_LEVEL", "WARNING"))
    if kind == "graph":
        asyncio.run(serve_graph(port, float(graph_url)))
        return
    if kind == "channel":
        app = channel_app(graph_url, mark_as_read=True)
    elif kind == "channel_no_receipts":
        app = channel_app(graph_url, mark_as_read=False)
    elif kind == "bare":
        app = bare_app(graph_url, receipts=False)
    elif kind == "bare_receipts":
        app = bare_app(graph_url, receipts=True)
    elif kind == "channel_redis":
        redis_url = environ["BENCH_REDIS_URL"]
        app = channel_app(graph_url, mark_as_read=True, queue="redis", redis_url=redis_url)
    else:
        raise SystemExit(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if environ.get("BENCH_GC_STATS"):
        _count_gc(kind)
    if environ.get("BENCH_GC_FREEZE"):  # diagnosis only: what the full collections cost
        import gc

        gc.collect()
        gc.freeze()
    app.run(host="127.0.0.1", port=port, workers=1, access_log=False, debug=False)


def _count_gc(kind: str) -> None:
    """BENCH_GC_STATS=1: time every garbage collection; printed on exit (to the server's log)."""
    import atexit
    import gc

    spent = [0.0, 0.0, 0.0]
    runs = [0, 0, 0]
    collected = [0, 0, 0]
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            took = time.perf_counter() - began[0]
            spent[info["generation"]] += took
            collected[info["generation"]] += info["collected"]
            runs[info["generation"]] += 1
            if info["generation"] == 2:
                print(
                    f"gc {kind}: full collection of {took:.3f} s at {time.time():.1f}, "
                    f"{info['collected']} collected, {len(gc.get_objects())} objects left",
                    flush=True,
                )

    def report() -> None:
        print(
            f"gc {kind}: runs {runs}, seconds {[round(s, 3) for s in spent]}, "
            f"collected {collected}",
            flush=True,
        )

    gc.callbacks.append(timed)
    atexit.register(report)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], os.environ)
