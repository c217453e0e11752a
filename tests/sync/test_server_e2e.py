"""End to end: `python -m flask --app server run` with the rasa backend, a real `rasa run` with
the trained sample bot (REST channel) and its action server, and the Graph API at a test server.

    Meta (these tests) --signed webhook--> server.py --REST--> rasa run --> rasa run actions
    Graph API (GraphServer) <--answers, read receipts-- server.py
"""

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rasa", reason="needs a Rasa server: the rasa extra (Python 3.10)")

from tests.conftest import VERIFY_TOKEN
from tests.support.graph_server import GraphServer
from tests.support.processes import RASA, free_port, running
from tests.support.settings import whatsapp_env
from tests.support.sync_service import messages_to, signature_headers, wait_for_messages
from tests.support.webhooks import encode, envelope, text_message, user_message

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT = 60.0
"""The first turn warms the model and the action server up."""


def server_env(graph: GraphServer, **overrides: str) -> dict[str, str]:
    """Every setting server.py reads, explicitly, so that no developer's .env leaks in."""
    env = whatsapp_env(
        graph.base_url,
        WHATSAPP_API_VERSION="v23.0",
        WHATSAPP_VALIDATE_SIGNATURE="true",
        WHATSAPP_MARK_AS_READ="true",
        WHATSAPP_DEDUP="memory",
        WHATSAPP_BACKEND="rasa",
        WHATSAPP_RASA_APOLOGY="",
        FLASK_SKIP_DOTENV="1",
    )
    return env | overrides


def flask_args(port: int) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "server", "run", "-p", str(port)]


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url, data=body, headers=signature_headers(body) if headers is None else headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphServer]:
    with GraphServer() as server:
        yield server


@pytest.fixture(scope="module")
def rasa_url(
    trained_model: Path, action_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`rasa run --enable-api` with only the REST channel, on a free port."""
    workdir = tmp_path_factory.mktemp("rasa-rest")
    credentials = workdir / "credentials.yml"
    credentials.write_text("rest:\n")
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "{action_server_url}"\n')
    port = free_port()
    args = [
        RASA, "run", "--enable-api", "--model", str(trained_model),
        "--credentials", str(credentials), "--endpoints", str(endpoints),
        "--interface", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running(args, url + "/status", timeout=180, log_path=workdir / "rasa.log"):
        yield url


@pytest.fixture(scope="module")
def server_url(
    graph: GraphServer, rasa_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """server.py, as the README starts it, with the rasa backend."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("flask") / "server.log"
    env = server_env(graph, WHATSAPP_RASA_URL=rasa_url)
    with running(flask_args(port), url + "/health", env=env, timeout=60, log_path=log):
        yield url


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"]["body"] for m in messages if m["type"] == "text"]


def test_a_greeting_is_answered_by_rasa_with_the_users_name_and_the_menu(
    server_url: str, graph: GraphServer
) -> None:
    sender = "5511900000501"
    assert post(server_url + "/webhook", encode(text_message(sender, "oi", name="Ana")[0])) == 200
    greeting, menu = wait_for_messages(graph, sender, 2, timeout=ANSWER_TIMEOUT)
    # action_saudar read the profile name from metadata["whatsapp"], sent through the backend.
    assert greeting["text"]["body"].startswith("Olá, Ana!")
    assert menu["type"] == "interactive"
    assert menu["interactive"]["type"] == "button"
    assert [b["reply"]["id"] for b in menu["interactive"]["action"]["buttons"]] == [
        "/ver_planos",
        "/encontrar_loja",
        "/ver_categorias",
    ]
    receipts = [r.json for r in graph.requests if r.json and r.json.get("status") == "read"]
    assert any(receipt.get("typing_indicator") == {"type": "text"} for receipt in receipts)


def test_a_button_tap_reaches_rasa_and_whatsapp_only_answers_are_relayed(
    server_url: str, graph: GraphServer
) -> None:
    sender = "5511900000502"
    tap = {
        "type": "button_reply",
        "button_reply": {"id": '/escolher_plano{"plano":"plus"}', "title": "Plus"},
    }
    assert post(server_url + "/webhook", encode(user_message(sender, "interactive", tap)[0])) == 200
    confirmation, link = wait_for_messages(graph, sender, 2, timeout=ANSWER_TIMEOUT)
    assert "*Plus*" in confirmation["text"]["body"]
    # The action sent a Cloud API body (`custom`) because input_channel is "whatsapp".
    assert link["type"] == "interactive"
    assert link["interactive"]["type"] == "cta_url"
    assert link["interactive"]["action"]["parameters"]["url"].endswith("plano=plus")


def test_redeliveries_are_answered_once(server_url: str, graph: GraphServer) -> None:
    sender = "5511900000503"
    before = _health(server_url)
    body = encode(text_message(sender, "/ver_planos")[0])
    for _ in range(3):
        assert post(server_url + "/webhook", body) == 200
    [plans] = wait_for_messages(graph, sender, 1, timeout=ANSWER_TIMEOUT)
    assert len(plans["interactive"]["action"]["buttons"]) == 3
    after = _wait_for_health(
        server_url, lambda h: h["pending"] == 0 and h["duplicates"] >= before["duplicates"] + 2
    )
    assert after["duplicates"] - before["duplicates"] == 2
    assert after["delivered"] - before["delivered"] == 1
    assert after["backend"] == "rasa"
    assert len(messages_to(graph, sender)) == 1


def test_statuses_and_forged_webhooks_never_reach_rasa(server_url: str, graph: GraphServer) -> None:
    before = _health(server_url)
    status = {
        "id": "wamid.E2E",
        "status": "failed",
        "timestamp": "1",
        "recipient_id": "5511900000504",
        "errors": [{"code": 131026, "title": "Message Undeliverable"}],
    }
    assert post(server_url + "/webhook", encode(envelope(statuses=[status]))) == 200
    forged = encode(text_message("5511900000504", "oi")[0])
    wrong = {"X-Hub-Signature-256": "sha256=" + "1" * 64}
    assert post(server_url + "/webhook", forged, wrong) == 403
    assert post(server_url + "/webhook", forged, {}) == 401
    assert post(server_url + "/webhook", b"not json") == 400
    after = _wait_for_health(server_url, lambda h: h["statuses"] > before["statuses"])
    assert after["failed_statuses"] == before["failed_statuses"] + 1
    assert after["delivered"] == before["delivered"]
    assert messages_to(graph, "5511900000504") == []


def test_verification(server_url: str) -> None:
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=31337"
    with urllib.request.urlopen(f"{server_url}/webhook?{query}", timeout=10) as response:
        assert response.read() == b"31337"


def test_when_rasa_is_down_the_user_gets_the_apology(graph: GraphServer) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(
        graph,
        WHATSAPP_RASA_URL=f"http://127.0.0.1:{free_port()}",
        WHATSAPP_RASA_APOLOGY="Estamos com instabilidade, tente de novo em instantes.",
    )
    with running(flask_args(port), url + "/health", env=env, timeout=60):
        sender = "5511900000505"
        assert post(url + "/webhook", encode(text_message(sender, "oi")[0])) == 200
        [apology] = wait_for_messages(graph, sender, 1, timeout=20)
    assert apology["text"]["body"] == "Estamos com instabilidade, tente de novo em instantes."


def _health(server_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(server_url + "/health", timeout=10) as response:
        result: dict[str, Any] = json.load(response)
    return result


def _wait_for_health(
    server_url: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not condition(health := _health(server_url)):
        assert time.monotonic() < deadline, f"health never matched: {health}"
        time.sleep(0.05)
    return health
