"""The domain and the actions agree, and the domain's responses fit WhatsApp."""

import copy

from rasa_sdk.executor import ActionExecutor

from connectors.whatsapp import limits
from tests.bot.turns import DOMAIN, assert_label, assert_sendable, parse_like_rasa


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
    assert [name for name, _ in whatsapp_only] == ["utter_pedir_localizacao"]
    for name, variation in whatsapp_only:
        assert_sendable(variation["custom"])
        assert any(not v.get("channel") for v in DOMAIN.responses[name]), "no fallback"
