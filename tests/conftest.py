"""Settings shared by every test: no telemetry, no network but loopback."""

import os

os.environ["RASA_TELEMETRY_ENABLED"] = "false"
# Never let a test reach a proxy or an outside host by accident.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = "127.0.0.1,localhost"

APP_SECRET = "3f9c1e7a5b2d4680aa17c0de55e1b9f2"
VERIFY_TOKEN = "verify-me"
ACCESS_TOKEN = "EAAtest-token"
PHONE_NUMBER_ID = "106540352242922"


# Session-wide real things (trained once per run), shared by the end-to-end suites.
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# A hung test's name and pending tasks end the output (CI keeps only its tail).
pytest_plugins = ["tests.support.watchdog"]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample bot, trained once per test run with its light pipeline."""
    from tests.support.model import train_model

    return train_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def action_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rasa run actions` with the sample bot's actions, on a free port."""
    from tests.support.processes import action_server_args, free_port, running

    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "actions.log"
    with running(action_server_args(port), f"http://127.0.0.1:{port}/health", log_path=log):
        yield f"http://127.0.0.1:{port}/webhook"
