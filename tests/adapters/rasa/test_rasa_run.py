"""The way users start it: `rasa run --credentials credentials.yml`, as a real process."""

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from connectors.whatsapp.core.signature import sign
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer
from tests.support.processes import PROJECT_ROOT, RASA, child_env, free_port, running
from tests.support.settings import whatsapp_env
from tests.support.webhooks import encode, text_message

pytestmark = pytest.mark.e2e


def test_rasa_run_with_the_projects_credentials_serves_whatsapp(
    trained_model: Path, action_server_url: str, tmp_path: Path
) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: {action_server_url}\n")
    port = free_port()
    args = [RASA, "run", "-m", str(trained_model), "--credentials", "credentials.yml"]
    args += ["--endpoints", str(endpoints), "--port", str(port), "-i", "127.0.0.1"]
    with GraphServer(access_token=ACCESS_TOKEN) as graph:
        health = f"http://127.0.0.1:{port}/webhooks/whatsapp/"
        log = tmp_path / "rasa.log"
        with running(args, health, env=whatsapp_env(graph.base_url), log_path=log, timeout=180):
            sender = "5511955554444"
            body = encode(text_message(sender, "oi")[0])
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/whatsapp/webhook",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign(body, APP_SECRET),
                },
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            requests = graph.wait_for_sync(2, timeout=30)
            # The REST channel of credentials.yml is served beside WhatsApp.
            rest = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                data=json.dumps({"sender": "rest-user", "message": "oi"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(rest, timeout=30) as response:
                assert json.loads(response.read()), "the REST channel answered nothing"
        sent = [r.json for r in requests if r.json and r.json.get("to") == sender]
        assert sent, "no reply reached the Graph API"
        assert all(r.path == f"/v23.0/{PHONE_NUMBER_ID}/messages" for r in requests)
        assert all(r.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}" for r in requests)


@pytest.mark.parametrize("missing", ["WHATSAPP_APP_SECRET"])  # every key: tests/core/test_config.py
def test_rasa_run_stops_with_an_error_naming_the_missing_setting(
    trained_model: Path, tmp_path: Path, missing: str
) -> None:
    credentials = tmp_path / "credentials.yml"
    values = {
        "access_token": "${WHATSAPP_ACCESS_TOKEN}",
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": "${WHATSAPP_APP_SECRET}",
    }
    env = whatsapp_env("http://127.0.0.1:9")
    env[missing] = ""  # set but empty: Rasa expands it to nothing
    credentials.write_text(
        "connectors.whatsapp.WhatsAppInput:\n"
        + "".join(f"  {key}: {value}\n" for key, value in values.items())
    )
    result = subprocess.run(
        [RASA, "run", "-m", str(trained_model), "--credentials", str(credentials)],
        cwd=PROJECT_ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    key = missing.removeprefix("WHATSAPP_").lower()
    assert f"'{key}'" in result.stdout + result.stderr
