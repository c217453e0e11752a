"""Dead letters of `queue: redis`: list them, put them back.

    python -m connectors.whatsapp.core.queue dead-letters [--json]
    python -m connectors.whatsapp.core.queue requeue ID [ID ...]
    python -m connectors.whatsapp.core.queue requeue --all

A dead letter is a message whose turn raised `max_attempts` times (or whose instance died during
each attempt). Requeued, it goes to the end of its conversation's queue and runs once more, on
whichever instance takes it. Redis is found as the channel finds it: `--redis-url`, else
`WHATSAPP_REDIS_URL`, else redis://localhost:6379/0.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from connectors.whatsapp.core.config import DEFAULT_REDIS_URL
from connectors.whatsapp.core.queue.redis_stream import DEFAULT_PREFIX, RedisStreamIntake


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.whatsapp.core.queue", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("WHATSAPP_REDIS_URL") or DEFAULT_REDIS_URL
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("dead-letters", help="list the dead letters")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    requeue = commands.add_parser("requeue", help="put dead letters back in the queue")
    requeue.add_argument("ids", nargs="*", help="dead-letter ids, as listed")
    requeue.add_argument("--all", action="store_true", help="every dead letter")
    args = parser.parse_args(argv)
    if args.command == "requeue" and not (args.ids or args.all):
        parser.error("requeue needs dead-letter ids or --all")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    intake = RedisStreamIntake(url=args.redis_url, prefix=args.prefix, consumer="cli")
    try:
        letters = await intake.dead_letters(count=100_000)
        if args.command == "dead-letters":
            for letter in letters:
                if args.json:
                    _out(json.dumps(dataclasses.asdict(letter)))
                else:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.at))
                    _out(
                        f"{letter.id}  {when}  from {letter.conversation}  message {letter.wamid}"
                        f"  after {letter.attempts} attempt(s): {letter.error}"
                    )
            if not args.json:
                _out(f"{len(letters)} dead letter(s).", sys.stderr)
            return 0
        ids = [letter.id for letter in letters] if args.all else list(args.ids)
        failed = 0
        for dead_id in ids:
            new_id = await intake.requeue(dead_id)
            if new_id is None:
                failed += 1
                _out(f"no dead letter {dead_id}", sys.stderr)
            else:
                _out(f"{dead_id} requeued as {new_id}")
        return 1 if failed else 0
    finally:
        await intake.close()


def _out(line: str, stream: TextIO = sys.stdout) -> None:
    stream.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
