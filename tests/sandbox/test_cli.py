"""`whatsapp-sandbox` / `python -m sandbox` as a user runs it beside their own bot.

The sandbox runs as a real process; the "bot" is a small aiohttp server that checks the signature
and the verify token with its own settings, as the channel does. When they differ from the
sandbox's, the sandbox's terminal must say so, with the fix.
"""

import asyncio
import hashlib
import hmac
import json
import shlex
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.cli import _parser, bot_environment, config_from, main
from sandbox.config import SandboxConfig
from tests.support.http import client_session
from tests.support.processes import PROJECT_ROOT, child_env, free_port

BOT_SECRET = "the-bot-s-own-secret"
BOT_VERIFY = "the-bot-s-own-verify-token"


class Terminal:
    def __init__(self, process: "subprocess.Popen[bytes]", log: Path, port: int) -> None:
        self.process, self.log, self.port = process, log, port

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, needle: str, timeout: float = 20) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in self.text():
            if self.process.poll() is not None or loop.time() > deadline:
                raise AssertionError(f"{needle!r} not in the sandbox's output:\n{self.text()}")
            await asyncio.sleep(0.1)
        return self.text()


@pytest.fixture
async def picky_bot() -> AsyncIterator[str]:
    """A bot with its own app secret and verify token: 403 for anything else."""

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(BOT_SECRET.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        return web.Response(status=200 if hmac.compare_digest(given, expected) else 403)

    async def verify(request: web.Request) -> web.Response:
        if request.query.get("hub.verify_token") != BOT_VERIFY:
            return web.Response(status=403)
        return web.Response(text=request.query.get("hub.challenge", ""))

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/webhook", verify)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/webhook"))
    await server.close()


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[object]:
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        port = free_port()
        log = tmp_path / f"sandbox-{port}.log"
        env = {k: v for k, v in child_env().items() if not k.startswith(("WHATSAPP_", "SANDBOX_"))}
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "sandbox", "--port", str(port), *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        terminal = Terminal(process, log, port)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.process.terminate()
        terminal.process.wait(10)


def exports(text: str) -> dict[str, str]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("export ")]
    return dict(shlex.split(line)[1].split("=", 1) for line in lines)


async def test_it_prints_what_the_bot_needs_and_warns_when_the_secrets_differ(
    picky_bot: str, start_sandbox: object
) -> None:
    terminal = start_sandbox("--webhook-url", picky_bot)  # type: ignore[operator]
    text = await terminal.wait_for("WhatsApp sandbox on")
    base = f"http://127.0.0.1:{terminal.port}"
    assert exports(text) == {
        "WHATSAPP_ACCESS_TOKEN": "sandbox-access-token",
        "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "WHATSAPP_VERIFY_TOKEN": "sandbox-verify-token",
        "WHATSAPP_APP_SECRET": "sandbox-app-secret",
        "WHATSAPP_API_BASE_URL": base,
    }
    assert f"chat with your bot at {base}/" in text
    # The verification GET carries the sandbox's verify token: the bot answers 403.
    text = await terminal.wait_for("refused the verification GET")
    assert "WARNING" in text and "HTTP 403" in text and picky_bot in text
    assert "WHATSAPP_VERIFY_TOKEN differs from the sandbox's" in text
    # A user writes: the signed POST is refused, and the terminal names the app secret.
    async with client_session() as session:
        url = f"{base}/_sandbox/contacts/5511987654321/messages"
        async with session.post(url, json={"type": "text", "text": "oi"}) as response:
            assert response.status == 200
    text = await terminal.wait_for("refused a signed webhook POST with HTTP 403")
    assert "the bot's WHATSAPP_APP_SECRET differs from the sandbox's" in text


async def test_with_the_bot_s_settings_nothing_is_refused(
    picky_bot: str, start_sandbox: object
) -> None:
    terminal = start_sandbox(  # type: ignore[operator]
        "--webhook-url", picky_bot, "--app-secret", BOT_SECRET, "--verify-token", BOT_VERIFY
    )
    text = await terminal.wait_for("is verified")
    assert exports(text)["WHATSAPP_APP_SECRET"] == BOT_SECRET
    async with client_session() as session:
        base = f"http://127.0.0.1:{terminal.port}"
        url = f"{base}/_sandbox/contacts/5511987654321/messages"
        async with session.post(url, json={"type": "text", "text": "oi"}) as response:
            sent = await response.json()
        for _ in range(100):
            async with session.get(f"{base}/_sandbox/conversations/5511987654321") as response:
                (entry,) = (await response.json())["messages"]
            if entry["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
    assert (entry["id"], entry["status"]) == (sent["id"], "delivered")
    assert "WARNING" not in terminal.text()


async def test_a_bot_with_another_token_or_number_is_told_in_the_terminal_once(
    start_sandbox: object,
) -> None:
    """The bot sees 190 or 100 in its own log; the sandbox's terminal names the setting too."""
    terminal = start_sandbox("--no-verify")  # type: ignore[operator]
    await terminal.wait_for("WhatsApp sandbox on")
    base = f"http://127.0.0.1:{terminal.port}/v23.0"
    body = {"messaging_product": "whatsapp", "to": "5511987654321", "text": {"body": "oi"}}
    async with client_session() as session:
        for _ in range(3):  # told once, not once per call
            wrong_token = {"Authorization": "Bearer the-bot-s-token"}
            url = f"{base}/100000000000001/messages"
            async with session.post(url, json=body, headers=wrong_token) as response:
                assert response.status == 401
            right_token = {"Authorization": "Bearer sandbox-access-token"}
            async with session.post(f"{base}/999/messages", json=body, headers=right_token) as r:
                assert r.status == 400
    text = await terminal.wait_for("--phone-number-id")
    text = await terminal.wait_for("--access-token")
    assert text.count("WHATSAPP_ACCESS_TOKEN to the sandbox's (--access-token)") == 1
    assert "business number '999', not the sandbox's '100000000000001'" in text
    assert text.count("WHATSAPP_PHONE_NUMBER_ID to the sandbox's") == 1


async def test_an_unreachable_webhook_url_is_said(start_sandbox: object) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/whatsapp/webhook"
    terminal = start_sandbox("--webhook-url", url)  # type: ignore[operator]
    text = await terminal.wait_for("unreachable")
    assert "WARNING" in text and url in text and "is the bot running?" in text


def test_options_override_the_environment() -> None:
    base = SandboxConfig.from_env({"WHATSAPP_APP_SECRET": "from-env", "SANDBOX_PORT": "6100"})
    args = _parser().parse_args(["--port", "7100", "--throughput", "0", "--no-window"])
    config = config_from(args, base)
    assert (config.port, config.app_secret) == (7100, "from-env")
    assert (config.throughput_per_second, config.enforce_service_window) == (0.0, False)
    assert bot_environment(config)["WHATSAPP_API_BASE_URL"] == "http://127.0.0.1:7100"
    assert json.dumps(bot_environment(config))  # plain strings only


def test_bad_settings_stop_it_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--throughput", "-1"]) == 2
    assert "rates are >= 0" in capsys.readouterr().err
    monkeypatch.setenv("SANDBOX_PAIR_BURST", "many")
    assert main([]) == 2
    assert "SANDBOX_PAIR_BURST must be a number, not 'many'" in capsys.readouterr().err
    monkeypatch.setenv("SANDBOX_PAIR_BURST", "3")
    monkeypatch.setenv("SANDBOX_WINDOW_REFUSAL", "never")
    assert main([]) == 2
    assert "SANDBOX_WINDOW_REFUSAL must be one of http, status" in capsys.readouterr().err


def test_a_port_in_use_is_one_clear_line_and_nothing_printed_for_the_bot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not the export lines of a sandbox that never started, then aiohttp's traceback."""
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--no-verify"]) == 2
        out, err = capsys.readouterr()
        assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
        assert "export WHATSAPP_" not in out and "Traceback" not in err
    finally:
        taken.close()
