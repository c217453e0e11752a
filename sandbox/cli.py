"""`whatsapp-sandbox` (or `python -m sandbox`): the sandbox for any bot, pointed at its webhook.

    whatsapp-sandbox --webhook-url http://127.0.0.1:5005/webhooks/whatsapp/webhook

At start it prints the `export WHATSAPP_...=` lines the bot needs (the same token, number, app
secret and verify token as the sandbox, and `WHATSAPP_API_BASE_URL` pointing at it) and the chat
page's URL. When the bot refuses the verification GET or a signed webhook POST, or cannot be
reached, the sandbox says so in this terminal (a WARNING with the status, the URL and the likely
fix), not only in the page. Every setting also comes from the environment (`SANDBOX_*` and the
channel's own `WHATSAPP_*`, see `SandboxConfig.from_env`); options win. docs/sandbox.md has the
HTTP API.
"""

import argparse
import dataclasses
import logging
import os
import shlex
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from .config import WINDOW_REFUSALS, SandboxConfig
from .server import create_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsapp-sandbox",
        description="A local stand-in for the WhatsApp Cloud API, with a chat page.",
        epilog="Defaults come from SANDBOX_* and WHATSAPP_* variables, else the values shown.",
    )
    add = parser.add_argument
    add("--webhook-url", help="the bot's webhook URL (SANDBOX_WEBHOOK_URL; default: Rasa's)")
    add("--host", help="interface to listen on (SANDBOX_HOST; default 127.0.0.1)")
    add("--port", type=int, help="port (SANDBOX_PORT; default 5100)")
    add("--access-token", help="the bearer token the bot must send (WHATSAPP_ACCESS_TOKEN)")
    add("--phone-number-id", help="the business number's id (WHATSAPP_PHONE_NUMBER_ID)")
    add("--app-secret", help="signs the webhooks (WHATSAPP_APP_SECRET)")
    add("--verify-token", help="sent in the verification GET (WHATSAPP_VERIFY_TOKEN)")
    add("--no-verify", action="store_true", help="skip the verification GET at start-up")
    add(
        "--window-refusal",
        choices=WINDOW_REFUSALS,
        help="131047 outside the 24-hour window: at once as HTTP 400 (http, the default) or "
        "later as a failed status webhook (status)",
    )
    add("--no-window", action="store_true", help="do not enforce the 24-hour window")
    add("--throughput", type=float, help="messages/s per business number; 0 is off (default 80)")
    add("--pair-interval", type=float, help="seconds per message to one user; 0 is off (6)")
    add("--pair-burst", type=int, help="messages one user may get in a burst (default 45)")
    add("--quiet", action="store_true", help="do not print the export lines (make run)")
    return parser


_OPTIONS = {
    "webhook_url": "webhook_url",
    "host": "host",
    "port": "port",
    "access_token": "access_token",
    "phone_number_id": "phone_number_id",
    "app_secret": "app_secret",
    "verify_token": "verify_token",
    "window_refusal": "window_refusal",
    "throughput": "throughput_per_second",
    "pair_interval": "pair_interval",
    "pair_burst": "pair_burst",
}


def config_from(args: argparse.Namespace, base: SandboxConfig) -> SandboxConfig:
    """The environment's settings (`base`) with the options given on the command line."""
    changes: dict[str, object] = {
        field: getattr(args, option)
        for option, field in _OPTIONS.items()
        if getattr(args, option) is not None
    }
    if args.no_verify:
        changes["verify_on_start"] = False
    if args.no_window:
        changes["enforce_service_window"] = False
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def bot_environment(config: SandboxConfig) -> dict[str, str]:
    """What the bot needs to talk to this sandbox: the channel's own `WHATSAPP_*` variables."""
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    return {
        "WHATSAPP_ACCESS_TOKEN": config.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": config.phone_number_id,
        "WHATSAPP_VERIFY_TOKEN": config.verify_token,
        "WHATSAPP_APP_SECRET": config.app_secret,
        "WHATSAPP_API_BASE_URL": f"http://{host}:{config.port}",
    }


def banner(config: SandboxConfig) -> str:
    env = bot_environment(config)
    lines = [
        "",
        f"WhatsApp sandbox: chat with your bot at {env['WHATSAPP_API_BASE_URL']}/",
        f"It posts webhooks to {config.webhook_url}",
        "Start your bot with these settings (credentials.yml reads them as ${...}):",
        "",
        *(f"  export {name}={shlex.quote(value)}" for name, value in env.items()),
        "",
    ]
    return "\n".join(lines) + "\n"


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed.

    A port already taken (another sandbox, `make run`) is then one clear line and exit 2, instead
    of the `export` lines for a sandbox that never started followed by aiohttp's traceback.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = config_from(args, SandboxConfig.from_env())
        app = create_app(config)
    except ValueError as error:  # a malformed SANDBOX_* variable, a negative rate
        sys.stderr.write(f"whatsapp-sandbox: {error}\n")
        return 2
    try:
        sock = listen(config.host, config.port)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        sys.stderr.write(
            f"whatsapp-sandbox: cannot listen on {config.host}:{config.port}: {reason}. "
            "Another sandbox (or `make run`) may be using it: choose another with --port "
            "(the printed WHATSAPP_API_BASE_URL follows it).\n"
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not args.quiet:
        sys.stdout.write(banner(config))
        sys.stdout.flush()
    web.run_app(
        app,
        sock=sock,
        print=lambda _: logging.info("WhatsApp sandbox on %s", config.base_url),
        shutdown_timeout=3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
