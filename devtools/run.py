"""`python -m devtools.run` (what `make run` runs): the sample bot, on the sandbox or on WhatsApp.

1. Loads `.env` if there is one.
2. Without complete Meta credentials (the default): trains the model if it is missing or older
   than its sources, then starts the action server, `rasa run` with the WhatsApp channel pointed
   at the sandbox (`WHATSAPP_API_BASE_URL`), and the sandbox; prints the URL of the chat page.
3. With Meta credentials in `.env` (the four `WHATSAPP_*` secrets, and `WHATSAPP_API_BASE_URL`
   unset or Meta's): the same without the sandbox, and the webhook URL to give Meta.

Ctrl-C (or SIGTERM) stops every child, each in its own process group. A child that dies while
starting makes the command stop the others and exit non-zero, with the end of its output.
"""

import argparse
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sandbox.config import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_API_VERSION,
    DEFAULT_APP_SECRET,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_PORT,
    DEFAULT_VERIFY_TOKEN,
)

from .supervisor import Service, StartupError, Supervisor, port_in_use

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUIET_PATH = str(Path(__file__).resolve().parent / "quiet")
"""On the children's PYTHONPATH: its `sitecustomize` leaves out the libraries' deprecations."""
BIN = Path(sys.executable).parent
RASA = str(BIN / "rasa")
RASA_PORT = 5005
ACTIONS_PORT = 5055
"""Fixed: endpoints.yml points the bot at http://localhost:5055/webhook."""
SECRETS = (
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
)
META_HOSTS = ("graph.facebook.com",)
TRAINING_INPUTS = ("config.yml", "domain.yml", "domain", "data")

Mode = Literal["sandbox", "whatsapp"]


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    env: Mapping[str, str] = field(repr=False)
    stages: tuple[tuple[Service, ...], ...]
    """The services in the order they are started, each stage once the one before answers."""
    warnings: tuple[str, ...] = ()
    sandbox_url: str | None = None
    webhook_url: str = ""
    rasa_port: int = RASA_PORT

    @property
    def services(self) -> tuple[Service, ...]:
        return tuple(service for stage in self.stages for service in stage)

    @property
    def hides_library_deprecations(self) -> bool:
        return QUIET_PATH in self.env["PYTHONPATH"].split(os.pathsep)


def uses_real_whatsapp(env: Mapping[str, str]) -> bool:
    """Meta credentials are complete, and the Graph API is Meta's (not the sandbox)."""
    base_url = env.get("WHATSAPP_API_BASE_URL", "").strip()
    meta_base = not base_url or any(host in base_url for host in META_HOSTS)
    return meta_base and all(env.get(name, "").strip() for name in SECRETS)


def plan(env: Mapping[str, str], model: Path | None = None) -> Plan:
    """What to start, and with which environment, for the settings in `env`.

    `model` is a trained model to serve; by default `rasa run` serves the newest in models/.
    """
    rasa_port = int(env.get("RASA_PORT") or RASA_PORT)
    child_env = dict(env)
    child_env["RASA_TELEMETRY_ENABLED"] = "false"
    child_env["PYTHONUNBUFFERED"] = "1"
    # Rasa's dependencies print pages of deprecation warnings at start-up: keep the output readable.
    # `ignore` alone is not enough (devtools/quiet/sitecustomize.py says why); a PYTHONWARNINGS of
    # the user's own other than `ignore` shows everything.
    quiet = env.get("PYTHONWARNINGS", "ignore") == "ignore"
    child_env.setdefault("PYTHONWARNINGS", "ignore")
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (QUIET_PATH if quiet else "", str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    webhook_url = f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/webhook"
    actions = Service(
        "actions",
        (RASA, "run", "actions", "--actions", "actions", "--port", str(ACTIONS_PORT)),
        f"http://127.0.0.1:{ACTIONS_PORT}/health",
        timeout=180,
        port=ACTIONS_PORT,
    )
    rasa_args: tuple[str, ...] = (
        RASA,
        "run",
        "--credentials",
        "credentials.yml",
        "--endpoints",
        "endpoints.yml",
        "--port",
        str(rasa_port),
    )
    if model is not None:
        rasa_args += ("--model", str(model))
    if uses_real_whatsapp(env):
        rasa = Service(
            "rasa",
            rasa_args,
            f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/",
            timeout=600,
            port=rasa_port,
        )
        return Plan(
            "whatsapp", child_env, ((actions, rasa),), webhook_url=webhook_url, rasa_port=rasa_port
        )

    warnings = []
    given = [name for name in SECRETS if env.get(name, "").strip()]
    if given:
        missing = ", ".join(name for name in SECRETS if name not in given)
        if missing:
            warnings.append(
                f"Meta credentials are incomplete (missing {missing}): using the "
                "local sandbox instead of WhatsApp."
            )
        else:
            warnings.append(
                f"WHATSAPP_API_BASE_URL is {env.get('WHATSAPP_API_BASE_URL')}: "
                "using the local sandbox instead of WhatsApp."
            )
    sandbox_port = int(env.get("SANDBOX_PORT") or DEFAULT_PORT)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    child_env.update(
        {
            "WHATSAPP_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": DEFAULT_PHONE_NUMBER_ID,
            "WHATSAPP_VERIFY_TOKEN": DEFAULT_VERIFY_TOKEN,
            "WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
            "WHATSAPP_API_BASE_URL": sandbox_url,
            "WHATSAPP_API_VERSION": env.get("WHATSAPP_API_VERSION") or DEFAULT_API_VERSION,
            "SANDBOX_PORT": str(sandbox_port),
            "SANDBOX_WEBHOOK_URL": webhook_url,
            "SANDBOX_BUSINESS_NAME": env.get("SANDBOX_BUSINESS_NAME") or "Loja Exemplo",
        }
    )
    rasa = Service(
        "rasa",
        (*rasa_args, "-i", "127.0.0.1"),
        f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/",
        timeout=600,
        port=rasa_port,
    )
    sandbox = Service(
        "sandbox",
        (sys.executable, "-m", "sandbox", "--quiet"),
        f"{sandbox_url}/_sandbox/health",
        timeout=60,
        port=sandbox_port,
    )
    return Plan(
        "sandbox",
        child_env,
        # The sandbox verifies the bot's webhook URL as soon as it starts: started beside a Rasa
        # still loading its model, it warned on every `make run` that the URL was unreachable.
        ((actions, rasa), (sandbox,)),
        tuple(warnings),
        sandbox_url,
        webhook_url,
        rasa_port,
    )


def _newest_mtime(paths: Iterable[Path]) -> float:
    newest = 0.0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                newest = max(newest, file.stat().st_mtime)
    return newest


def model_is_stale(root: Path) -> bool:
    """No model in models/, or the newest one is older than config, domain or data.

    `rasa train` checks fingerprints itself, but starting it (TensorFlow, the training graph)
    takes 6-8 s here even when nothing changed (a whole training from an empty cache: 15 s);
    comparing modification times takes milliseconds.
    """
    models = list((root / "models").glob("*.tar.gz"))
    if not models:
        return True
    newest_model = max(m.stat().st_mtime for m in models)
    sources = [root / name for name in TRAINING_INPUTS if (root / name).exists()]
    return _newest_mtime(sources) > newest_model


def _load_dotenv(root: Path) -> bool:
    path = root / ".env"
    if not path.is_file():
        return False
    from dotenv import load_dotenv

    load_dotenv(path, override=False)
    return True


def _banner(plan_: Plan) -> list[str]:
    hidden = (
        ["  (Rasa's libraries' deprecation warnings left out; PYTHONWARNINGS=default shows them)"]
        if plan_.hides_library_deprecations
        else []
    )
    if plan_.mode == "sandbox":
        return [
            "",
            f"  Open {plan_.sandbox_url} to chat with the bot",
            "  (Ctrl-C stops everything)",
            *hidden,
            "",
        ]
    return [
        "",
        f"  The bot serves WhatsApp at {plan_.webhook_url}",
        "  Meta only calls a public HTTPS URL: expose the port, for example with",
        f"  `ngrok http {plan_.rasa_port}`, then in the App Dashboard",
        "  (WhatsApp > Configuration > Webhook) set the Callback URL to",
        "  https://<your-host>/webhooks/whatsapp/webhook, the Verify token to the value of",
        "  WHATSAPP_VERIFY_TOKEN, and subscribe to the `messages` field.",
        "  (Ctrl-C stops everything)",
        *hidden,
        "",
    ]


def main(argv: Sequence[str] | None = None, root: Path = PROJECT_ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="serve this trained model (no training); default: the newest in "
        "models/, trained first if missing or older than data/domain/config",
    )
    args = parser.parse_args(argv)
    dotenv = _load_dotenv(root)
    plan_ = plan(os.environ, args.model)
    supervisor = Supervisor(plan_.env, root)
    say = supervisor.say
    tag = "[run]".ljust(10)
    mode = "the local WhatsApp sandbox" if plan_.mode == "sandbox" else "WhatsApp (Meta)"
    say(f"{tag} starting the sample bot on {mode}{' (settings from .env)' if dotenv else ''}")
    for warning in plan_.warnings:
        say(f"{tag} note: {warning}")
    busy = [s for s in plan_.services if port_in_use(s.port)]
    if busy:
        for service in busy:
            say(
                f"{tag} port {service.port} ({service.name}) is already in use: is another "
                "`make run` (or rasa) running? Stop it first."
            )
        return 2

    def request_stop(signum: int, _: object) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if args.model is None and model_is_stale(root):
            say(f"{tag} training the model (no model yet, or data/domain/config changed)")
            code = supervisor.run_to_end("train", (RASA, "train"))
            if supervisor.stopping.is_set():
                say(f"{tag} stopped")
                return 0
            if code != 0:
                say(f"{tag} rasa train failed with code {code}; see its output above")
                return 1
        for stage in plan_.stages:
            for service in stage:
                supervisor.start(service.name, service.args)
            supervisor.wait_ready(stage)
            if supervisor.stopping.is_set():
                say(f"{tag} stopping")
                return 0
        for line in _banner(plan_):
            say(line)
        died = supervisor.watch()
        if died is not None:
            say(f"{tag} {died}")
            return 1
        say(f"{tag} stopping")
        return 0
    except StartupError as error:
        say(f"{tag} could not start: {error}")
        return 1
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
