"""actions/greeting.py: the greeting by the WhatsApp profile name (actions/tracker.first_name)."""

from typing import Any

import pytest

from actions.greeting import ActionGreet
from actions.tracker import first_name
from tests.bot.turns import run, texts, tracker_for, webhook_input


async def test_greets_in_portuguese_by_whatsapp_profile_name() -> None:
    # "oi" from Maria Silva: NLU says saudar, the channel's metadata says who she is.
    tracker = tracker_for("/saudar", metadata=webhook_input("text").metadata)

    messages, events = await run(ActionGreet(), tracker)

    assert texts(messages) == "Olá, Maria! 👋 Eu sou o assistente virtual da Loja Exemplo."
    assert events == []


async def test_greets_in_english_after_an_english_greeting() -> None:
    metadata = {"whatsapp": {"profile_name": "John Smith"}}

    messages, _ = await run(ActionGreet(), tracker_for("/greet_en", metadata=metadata))

    assert texts(messages).startswith("Hi, John! 👋 I'm the virtual assistant of Loja Exemplo.")


async def test_greets_without_a_name_on_other_channels() -> None:
    messages, _ = await run(ActionGreet(), tracker_for("/saudar", channel="rest"))

    assert texts(messages) == "Olá! 👋 Eu sou o assistente virtual da Loja Exemplo."


@pytest.mark.parametrize(
    ("whatsapp", "expected"),
    [
        ({"profile_name": "   "}, None),
        ({"profile_name": None, "contact": {"profile": {"name": "Ana Costa"}}}, "Ana"),
        ({"profile_name": "Bartolomeu" * 5}, "BartolomeuBartolomeuBart…"),
        ({"profile_name": 42}, None),
        ({"contact": "not an object"}, None),
    ],
)
def test_first_name_copes_with_any_profile(whatsapp: dict[str, Any], expected: str | None) -> None:
    tracker = tracker_for("/saudar", metadata={"whatsapp": whatsapp})

    assert first_name(tracker) == expected
