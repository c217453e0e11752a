"""The domain and the actions agree, and the domain's responses fit WhatsApp."""

import copy
import re
from typing import Any

import yaml
from rasa_sdk.executor import ActionExecutor

from connectors.whatsapp import limits
from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.inbound import DEFAULT_INTENTS, intent_names, to_bot_input
from connectors.whatsapp.core.parsing import parse_webhook
from tests.bot.turns import DOMAIN, assert_label, assert_sendable, parse_like_rasa
from tests.core.fixtures import fixture_names, load_fixture
from tests.support.processes import PROJECT_ROOT

OPT_OUT_INTENT = "whatsapp_opt_out"
"""What the channel sends when a user writes an opt-out keyword (STOP, PARAR, SAIR)."""


def test_the_action_server_registers_every_domain_action() -> None:
    """`rasa run actions --actions actions` walks the package: each module's actions are found."""
    executor = ActionExecutor()
    executor.register_package("actions")

    custom = {name for name in DOMAIN.user_actions if not name.startswith("utter_")}
    assert set(executor.actions) == custom


def test_domain_buttons_fit_whatsapp_without_shortening() -> None:
    """Button payloads come back as they are, so they must fit a list row id (200); titles fit
    reply buttons (20) with 1-3 buttons, list rows (24) with 4-10."""
    from rasa.core.nlg.interpolator import interpolate

    for name, variations in DOMAIN.responses.items():
        for variation in variations:
            buttons = interpolate(copy.deepcopy(variation.get("buttons") or []), {})
            title_limit = limits.REPLY_BUTTON_TITLE if len(buttons) <= 3 else limits.LIST_ROW_TITLE
            assert len(buttons) <= limits.LIST_ROWS_MAX, name
            for button in buttons:
                assert_label(button["title"], title_limit)
                if "url" in button:
                    assert button["url"].startswith("https://")
                    continue
                assert len(button["payload"]) <= limits.LIST_ROW_ID
                parsed = parse_like_rasa(button["payload"])  # a known intent, valid JSON
                assert ("{" in button["payload"]) == bool(parsed["entities"]), button["payload"]


def test_whatsapp_variations_are_valid_cloud_api_bodies() -> None:
    whatsapp_only = [
        (name, variation)
        for name, variations in DOMAIN.responses.items()
        for variation in variations
        if variation.get("channel") == "whatsapp"
    ]
    assert [name for name, _ in whatsapp_only] == ["utter_pedir_localizacao", "utter_lembrete"]
    for name, variation in whatsapp_only:
        assert_sendable(variation["custom"])
        assert any(not v.get("channel") for v in DOMAIN.responses[name]), "no fallback"


def readme_domain_snippet() -> dict[str, Any]:
    """The domain snippet that README's "Use it in your Rasa bot" tells users to copy."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- domain-snippet:.*?-->\s*```yaml\n(.*?)```", readme, re.DOTALL)
    assert match, "README lost its domain snippet"
    snippet: dict[str, Any] = yaml.safe_load(match.group(1))
    return snippet


def channel_entities() -> set[str]:
    """Every entity the channel puts in an intent trigger, over every recorded webhook."""
    found: set[str] = set()
    for name in fixture_names():
        for event in parse_webhook(load_fixture(name)):
            if not isinstance(event, InboundMessage):
                continue
            bot_input = to_bot_input(event)
            if bot_input is None or not bot_input.text.startswith("/whatsapp_"):
                continue
            found |= {entity["entity"] for entity in parse_like_rasa(bot_input.text)["entities"]}
    return found


def test_readme_domain_snippet_declares_what_the_channel_sends() -> None:
    snippet = readme_domain_snippet()
    defaults = {intent for intent in DEFAULT_INTENTS.values() if intent}

    assert set(snippet["intents"]) == defaults | {OPT_OUT_INTENT}
    sent = channel_entities()
    assert {"latitude", "media_id", "voice", "filename", "contact_name", "item_count"} <= sent
    assert sent <= set(snippet["entities"])


def test_the_sample_domain_declares_the_readme_snippet() -> None:
    snippet = readme_domain_snippet()

    assert set(snippet["intents"]) <= set(DOMAIN.intents)
    assert set(snippet["entities"]) <= set(DOMAIN.entities)


def test_readme_switch_off_example_uses_kinds_the_channel_knows() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"WhatsAppInput:\n\s*# \.\.\.\n\s*(intents: \{.*?\})\n", readme)
    assert match, "README lost its example of switching kinds off"
    overrides = yaml.safe_load(match.group(1))["intents"]

    names = intent_names(overrides)  # an unknown kind raises ValueError
    assert overrides and all(names[kind] is None for kind in names if kind.value in overrides)
