"""A real sandbox on 127.0.0.1 and a small real "bot" server that receives its webhooks."""

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox import SandboxConfig, create_app
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.http import client_session

ANA = "5511987654321"
"""The first simulated contact of the default configuration."""
REMINDER_SECONDS = 6
"""How long after being asked the sample bot's reminder fires in the browser test's stack."""


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def value(self) -> Any:
        return self.payload["entry"][0]["changes"][0]["value"]


@dataclass
class FakeBot:
    """Records every webhook POST; answers `answers` in turn, then 200."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    verify_token: str = VERIFY_TOKEN
    verifications: int = 0

    async def webhook(self, request: web.Request) -> web.Response:
        self.received.append(Received(await request.read(), dict(request.headers)))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status == 200 else "no")

    async def verify(self, request: web.Request) -> web.Response:
        self.verifications += 1
        if request.query.get("hub.verify_token") != self.verify_token:
            return web.Response(status=403)
        return web.Response(text=request.query.get("hub.challenge", ""))

    def messages(self) -> list[dict[str, Any]]:
        return [m for r in self.received for m in r.value.get("messages", [])]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for r in self.received for s in r.value.get("statuses", [])]

    async def wait_for(self, predicate: Callable[["FakeBot"], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; received: {[r.payload for r in self.received]}")
            await asyncio.sleep(0.01)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until `check()` is true (things happen in the sandbox's background tasks)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    fake = FakeBot()
    app = web.Application()
    app.router.add_post("/webhook", fake.webhook)
    app.router.add_get("/webhook", fake.verify)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("/webhook"))
    yield fake
    await server.close()


@dataclass
class Sandbox:
    """A running sandbox and a client session to call it."""

    server: TestServer
    session: aiohttp.ClientSession
    config: SandboxConfig

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def messages_url(self) -> str:
        return self.url(f"/v23.0/{self.config.phone_number_id}/messages")

    async def send(self, body: Any, token: str | None = ACCESS_TOKEN) -> tuple[int, Any]:
        """POST a body to the messages endpoint as the bot does; (status, decoded JSON)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.session.post(self.messages_url, json=body, headers=headers) as response:
            return response.status, await response.json()

    async def user_does(self, action: dict[str, Any], wa_id: str = ANA) -> dict[str, Any]:
        """What a simulated user does in the chat page; returns the recorded entry."""
        url = self.url(f"/_sandbox/contacts/{wa_id}/messages")
        async with self.session.post(url, json=action) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def conversation(self, wa_id: str = ANA) -> list[dict[str, Any]]:
        async with self.session.get(self.url(f"/_sandbox/conversations/{wa_id}")) as response:
            messages: list[dict[str, Any]] = (await response.json())["messages"]
            return messages


def sandbox_config(webhook_url: str, **changes: Any) -> SandboxConfig:
    """Fast delays, the shared test credentials, the fake bot's URL."""
    base = SandboxConfig(
        host="127.0.0.1",
        port=0,
        access_token=ACCESS_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        webhook_url=webhook_url,
        status_delays=(0.01, 0.01, 0.01),
        webhook_retry_delays=(0.05, 0.05),
        webhook_timeout=5.0,
    )
    return dataclasses.replace(base, **changes)


SandboxFactory = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox(bot: FakeBot) -> AsyncIterator[SandboxFactory]:
    started: list[Sandbox] = []

    async def make(**changes: Any) -> Sandbox:
        config = sandbox_config(bot.url, **changes)
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        sandbox = Sandbox(server, client_session(), config)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        await sandbox.session.close()
        await sandbox.server.close()


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox()


# --- the whole stack, started the way users start it (`python -m devtools.run`, `make run`)


@dataclass
class RunningStack:
    """`python -m devtools.run` with a trained model: action server, rasa run, sandbox."""

    process: "subprocess.Popen[bytes]"
    url: str
    log: Path
    returncode: int | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C to the run command only: it must stop its children itself. Idempotent."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.returncode = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
                message = f"the run command ignored Ctrl-C:\n{self.output()[-3000:]}"
                raise AssertionError(message) from None
        return self.returncode


@pytest.fixture(scope="module")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    from devtools.run import ACTIONS_PORT
    from devtools.supervisor import port_in_use
    from tests.support.processes import PROJECT_ROOT, child_env, free_port

    if port_in_use(ACTIONS_PORT):
        pytest.fail(
            f"port {ACTIONS_PORT} is in use (a `make run`?): the run command needs it, because "
            "endpoints.yml points the bot at it"
        )
    sandbox_port, rasa_port = free_port(), free_port()
    env = {k: v for k, v in child_env().items() if not k.startswith(("WHATSAPP_", "SANDBOX_"))}
    env.pop("PYTHONWARNINGS", None)  # as in a user's shell: the run command chooses
    # A base URL that is not Meta's keeps a developer's .env from switching to real WhatsApp.
    env |= {
        "SANDBOX_PORT": str(sandbox_port),
        "RASA_PORT": str(rasa_port),
        "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        # The sample bot's reminder (a WhatsApp template) fires within the browser test.
        "REMINDER_DELAY_SECONDS": str(REMINDER_SECONDS),
    }
    log = tmp_path_factory.mktemp("run") / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run", "--model", str(trained_model)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{sandbox_port}"
    running = RunningStack(process, url, log)
    ready = f"Open {url} to chat with the bot"
    deadline = time.monotonic() + 300
    while ready not in running.output():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"the run command did not get ready:\n{running.output()[-4000:]}")
        time.sleep(0.5)
    yield running
    running.stop()
