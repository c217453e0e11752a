"""Webhook bodies recorded in Meta's documented shapes, under tests/fixtures/webhooks/.

Most files are pretty-printed for reading. `text_emoji_non_bmp` and `text_portuguese` are kept
byte for byte as Meta sends them (compact, non-ASCII escaped as `\\uXXXX`, `/` as `\\/`): tests
that sign or check signatures must use `fixture_bytes`, never a re-encoded `load_fixture`.
"""

import json
from pathlib import Path
from typing import Any

WEBHOOK_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"


def fixture_names() -> list[str]:
    """Every webhook fixture, by file name without `.json`, sorted."""
    return sorted(path.stem for path in WEBHOOK_FIXTURES.glob("*.json"))


def fixture_bytes(name: str) -> bytes:
    """The raw body, exactly as stored (what Meta would POST and sign)."""
    return (WEBHOOK_FIXTURES / f"{name}.json").read_bytes()


def load_fixture(name: str) -> dict[str, Any]:
    """The decoded body; a fresh object on every call, so tests may change it."""
    payload: dict[str, Any] = json.loads(fixture_bytes(name))
    return payload
