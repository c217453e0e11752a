"""`python -m sandbox`: the sandbox alone (the bot runs elsewhere, pointed at it).

Settings come from the environment (`SandboxConfig.from_env`); options override them.
"""

import argparse
import dataclasses
import logging
import sys

from aiohttp import web

from .config import SandboxConfig
from .server import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 5100, or SANDBOX_PORT)")
    parser.add_argument("--webhook-url", help="the bot's webhook URL (or SANDBOX_WEBHOOK_URL)")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the webhook GET verification at start-up"
    )
    args = parser.parse_args(argv)
    config = SandboxConfig.from_env()
    changes: dict[str, object] = {}
    if args.host:
        changes["host"] = args.host
    if args.port:
        changes["port"] = args.port
    if args.webhook_url:
        changes["webhook_url"] = args.webhook_url
    if args.no_verify:
        changes["verify_on_start"] = False
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        print=lambda _: logging.info("WhatsApp sandbox on %s", config.base_url),
        shutdown_timeout=3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
