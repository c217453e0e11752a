"""What typed parsing and the signature check cost, next to the `json.loads` they cannot avoid.

Every accepted webhook is decoded once anyway; `parse_webhook_body` adds the walk over every
entry, change, message and status into frozen dataclasses (`events.py`). `check_signature` adds
an HMAC-SHA256 of the raw body. Both run before Meta gets its 200, so both must stay small.

The batch mixes the recorded fixtures of tests/fixtures/webhooks in realistic proportions: text
messages 40%, interactive replies 15%, media and other message types 15%, delivery statuses 30%.
Meta sends most updates one per POST but may batch up to 1000 in one, in bodies of up to 3 MB
(https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/create-webhook-endpoint,
.../webhooks/overview), so all these shapes are measured; bodies are compact, non-ASCII escaped
JSON, as Meta sends them.
"""

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

from _harness import Row, compare, print_table

from connectors.whatsapp.core.events import InboundMessage, StatusUpdate
from connectors.whatsapp.core.limits import TEXT_BODY, WEBHOOK_MAX_BODY_BYTES
from connectors.whatsapp.core.parsing import parse_webhook_body
from connectors.whatsapp.core.signature import SignatureCheck, check_signature, sign
from tests.conftest import APP_SECRET
from tests.core.fixtures import load_fixture

UPDATES = 1000
SIGNED_BODY_BYTES = 1024 * 1024
LARGEST_BODY_BYTES = WEBHOOK_MAX_BODY_BYTES - 128 * 1024
CHANGES_PER_ENTRY = 10
FILLER = " Não sei se é possível trocar a cor, então aguardo a sua resposta."
MIX: tuple[tuple[str, int], ...] = (
    # text messages: 40 of every 100 updates
    ("text", 16),
    ("text_portuguese", 8),
    ("text_emoji_non_bmp", 4),
    ("text_reply_context", 4),  # two messages: the reply and the one it quotes
    ("text_referral", 4),
    ("text_forwarded", 4),  # two messages
    # interactive replies: 15
    ("button_reply", 6),
    ("list_reply", 5),
    ("template_button", 2),
    ("nfm_reply", 2),
    # media and other message types: 15
    ("image", 4),
    ("audio_voice", 3),
    ("document", 2),
    ("video", 1),
    ("sticker", 1),
    ("location", 2),
    ("contacts", 1),
    ("reaction", 1),
    # delivery statuses: 30
    ("status_sent", 10),
    ("status_delivered", 10),
    ("status_read", 8),
    ("status_failed", 2),
)
"""Fixture name and how many of each per 100 updates (a fixture with two messages counts two)."""


def fixture_change(name: str) -> dict[str, Any]:
    """The fixture's single `messages` change."""
    change = load_fixture(name)["entry"][0]["changes"][0]
    if not isinstance(change, dict):
        raise TypeError(f"fixture {name} has no change object")
    return change


def updates_in(change: dict[str, Any]) -> int:
    value = change["value"]
    return len(value.get("messages", [])) + len(value.get("statuses", []))


def changes(total_updates: int) -> Iterator[dict[str, Any]]:
    """Changes in the proportions of MIX, with unique message ids, until `total_updates`."""
    templates = {name: fixture_change(name) for name, _ in MIX}
    cycle = [name for name, weight in MIX for _ in range(weight)]
    produced = 0
    for serial, name in enumerate(itertools.cycle(cycle)):
        if produced >= total_updates:
            return
        change = copy.deepcopy(templates[name])
        value = change["value"]
        for kind in ("messages", "statuses"):
            for item in value.get(kind, []):
                item["id"] = f"{item['id']}.{serial}"
        produced += updates_in(change)
        yield change


def webhook(change_list: list[dict[str, Any]]) -> bytes:
    """One POST body carrying `change_list`, CHANGES_PER_ENTRY changes per entry."""
    entries = [
        {"id": "102290129340398", "changes": change_list[start : start + CHANGES_PER_ENTRY]}
        for start in range(0, len(change_list), CHANGES_PER_ENTRY)
    ]
    payload = {"object": "whatsapp_business_account", "entry": entries}
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


def count_updates(bodies: list[bytes]) -> int:
    events = [event for body in bodies for event in parse_webhook_body(body)]
    return sum(isinstance(event, InboundMessage | StatusUpdate) for event in events)


def padded_batch(size: int) -> bytes:
    """UPDATES updates in one POST of about `size` bytes: its text messages are made longer.

    Meta caps a POST at 1000 updates and 3 MB, so a big body has long messages, not more of them.
    The filler is Portuguese, escaped to `\\uXXXX` as Meta does; a text stays under 4096 chars.
    """
    change_list = list(changes(UPDATES))
    texts = [
        message["text"]
        for change in change_list
        for message in change["value"].get("messages", [])
        if message.get("type") == "text"
    ]
    bytes_per_char = (len(json.dumps(FILLER)) - 2) / len(FILLER)
    missing = size - len(webhook(change_list))
    room = TEXT_BODY - max(len(text["body"]) for text in texts)
    per_text = min(int(missing / bytes_per_char / len(texts)), room)
    padding = (FILLER * (per_text // len(FILLER) + 1))[:per_text]
    for text in texts:
        text["body"] += padding
    return webhook(change_list)


def main() -> None:
    one_per_post = [webhook([change]) for change in changes(UPDATES)]
    batch = webhook(list(changes(UPDATES)))
    big = padded_batch(SIGNED_BODY_BYTES)
    largest = padded_batch(LARGEST_BODY_BYTES)
    if len(largest) > WEBHOOK_MAX_BODY_BYTES:
        raise AssertionError(f"the largest body ({len(largest)} bytes) is over Meta's limit")
    signature = sign(big, APP_SECRET)
    # The same work is done on both sides: check that the parsers do find every update.
    for bodies in (one_per_post, [batch], [big], [largest]):
        if count_updates(bodies) != UPDATES:
            raise AssertionError(f"expected {UPDATES} updates, parsed {count_updates(bodies)}")
    if check_signature(big, signature, APP_SECRET) is not SignatureCheck.VALID:
        raise AssertionError("the 1 MB body's signature does not check")

    def parse_each() -> None:
        for body in one_per_post:
            parse_webhook_body(body)

    def loads_each() -> None:
        for body in one_per_post:
            json.loads(body)

    rows = [
        Row.timed(
            f"{UPDATES} POSTs of 1 update: parse_webhook_body vs json.loads",
            compare(parse_each, loads_each),
        ),
        Row.timed(
            f"1 POST of {UPDATES} updates ({len(batch) / 2**20:.1f} MB): parse_webhook_body vs "
            "json.loads",
            compare(lambda: parse_webhook_body(batch), lambda: json.loads(batch)),
        ),
        Row.timed(
            f"1 POST of {UPDATES} long updates ({len(big) / 2**20:.1f} MB): check_signature vs "
            "json.loads",
            compare(lambda: check_signature(big, signature, APP_SECRET), lambda: json.loads(big)),
        ),
        Row.timed(
            f"1 POST of {UPDATES} long updates ({len(big) / 2**20:.1f} MB): parse_webhook_body vs "
            "json.loads",
            compare(lambda: parse_webhook_body(big), lambda: json.loads(big)),
        ),
        Row.timed(
            f"1 POST of {UPDATES} long updates ({len(largest) / 2**20:.1f} MB, near Meta's 3 MB "
            "maximum): parse_webhook_body vs json.loads",
            compare(lambda: parse_webhook_body(largest), lambda: json.loads(largest), repeats=5),
        ),
    ]
    per_update_us = rows[0].ours / UPDATES * 1000
    print_table(
        "Parsing and signature cost (medians of 7 alternated runs after 2 warm-ups; 5 for the"
        " last row)",
        rows,
        ratio="ours/baseline",
        conclusion=(
            f"Conclusion: typed parsing costs {rows[0].ours / rows[0].baseline:.1f}x a bare "
            f"json.loads ({per_update_us:.0f} us per single-update POST) and the signature check "
            f"{rows[2].ours / rows[2].baseline:.2f}x the json.loads of the same 1 MB body; a full "
            f"1000-update batch is parsed in {rows[1].ours:.0f} ms, "
            f"{'inside' if rows[1].ours < 250 else 'OVER'} Meta's 250 ms budget, and a body "
            f"near the 3 MB maximum in {rows[4].ours:.0f} ms "
            f"({'inside' if rows[4].ours < 250 else 'over'} it)."
        ),
    )


if __name__ == "__main__":
    main()
