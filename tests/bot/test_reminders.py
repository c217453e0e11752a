"""actions/reminders.py and the domain's reminder: a template on WhatsApp; an opt-out cancels it.

The WhatsApp variation of `utter_lembrete` is checked the way it leaves the bot: Rasa's own
response generator fills the slot for the output channel "whatsapp", the core's renderer makes
the Cloud API body, and the sandbox's Meta-like validation (`sandbox/validation.py`) accepts it;
on top of that the template's structure is checked against Meta's documented format
(https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates).
"""

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from actions.reminders import (
    REMINDER_INTENT,
    ActionCancelReminders,
    ActionScheduleReminder,
    reminder_delay,
    when,
)
from connectors.whatsapp.core.rendering import render_bot_message
from sandbox.validation import OutboundMessage, validate_request
from tests.bot.turns import DOMAIN, SENDER, run, slot_events, texts, tracker_for

TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
"""Meta: template names are lower case letters, digits and underscores."""


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_template_body(body: Mapping[str, Any], *, name: str) -> None:
    """A template message as Meta documents it, with its body parameter `name`."""
    assert body["type"] == "template"
    template = body["template"]
    assert TEMPLATE_NAME.fullmatch(template["name"])
    assert template["language"] == {"code": "pt_BR"}
    components = {component["type"]: component for component in template["components"]}
    assert set(components) <= {"header", "body", "button"}
    [parameter] = components["body"]["parameters"]
    assert parameter == {"type": "text", "text": name}
    # Error 132018: a text parameter has no new line or tab and at most 4 consecutive spaces.
    assert not re.search(r"[\n\t]| {5}", parameter["text"])
    button = components["button"]
    assert button["sub_type"] == "quick_reply" and button["index"].isdigit()
    assert [p["type"] for p in button["parameters"]] == ["payload"]
    for text in strings(template):
        assert "{" not in text and "}" not in text, f"placeholder left unfilled: {text!r}"


async def rendered(response: str, channel: str, **slots: Any) -> dict[str, Any]:
    """The response as Rasa's generator fills it for `channel`, with these slot values."""
    events = [SlotSet(name, value) for name, value in slots.items()]
    tracker = DialogueStateTracker.from_events(SENDER, events, slots=DOMAIN.slots)
    message = await TemplatedNaturalLanguageGenerator(DOMAIN.responses).generate(
        response, tracker, channel
    )
    assert message is not None
    return message


def sent(message: Mapping[str, Any]) -> list[OutboundMessage]:
    """The Cloud API bodies the channel sends for a bot message, each accepted by the sandbox."""
    checked = []
    for body in render_bot_message(message, to=SENDER):
        result = validate_request(body)
        assert isinstance(result, OutboundMessage)
        checked.append(result)
    return checked


# --------------------------------------------------------------------------------------------
# The template response.


@pytest.mark.parametrize("name", ["Maria", "João", "cliente"])
async def test_the_whatsapp_reminder_is_a_valid_template_with_the_name_filled(name: str) -> None:
    message = await rendered("utter_lembrete", "whatsapp", nome_cliente=name)

    [result] = sent(message)
    assert result.type == "template" and result.wa_id == SENDER
    assert_template_body(result.body, name=name)


async def test_the_template_parameter_is_never_empty() -> None:
    """The slot's initial value stands in when no action set a name (an empty parameter is
    refused by Meta)."""
    message = await rendered("utter_lembrete", "whatsapp")

    [result] = sent(message)
    assert_template_body(result.body, name="cliente")


async def test_other_channels_get_the_reminder_as_text_with_a_menu_button() -> None:
    message = await rendered("utter_lembrete", "collector", nome_cliente="Maria")

    assert message["text"].startswith("Olá, Maria! Aqui é a Loja Exemplo com o lembrete")
    assert message["buttons"] == [{"title": "Ver o menu", "payload": "/menu"}]
    assert "custom" not in message


# --------------------------------------------------------------------------------------------
# The actions.


async def test_a_reminder_is_scheduled_for_tomorrow_with_the_profile_name() -> None:
    tracker = tracker_for("/pedir_lembrete", metadata={"whatsapp": {"profile_name": "Maria S"}})

    before = datetime.now(timezone.utc)
    messages, events = await run(ActionScheduleReminder(), tracker)

    assert texts(messages).startswith("Combinado! Vou te mandar um lembrete amanhã, neste horário.")
    assert slot_events(events) == {"nome_cliente": "Maria"}
    [reminder] = [event for event in events if event["event"] == "reminder"]
    assert reminder["intent"] == REMINDER_INTENT and reminder["intent"] in DOMAIN.intents
    assert reminder["name"] == f"lembrete:{SENDER}"
    assert reminder["kill_on_user_msg"] is False
    due = datetime.fromisoformat(reminder["date_time"])
    assert before + timedelta(days=1) <= due <= datetime.now(timezone.utc) + timedelta(days=1)


async def test_without_a_profile_name_the_reminder_calls_the_user_cliente() -> None:
    _, events = await run(ActionScheduleReminder(), tracker_for("/pedir_lembrete", channel="rest"))

    assert slot_events(events) == {"nome_cliente": "cliente"}


@pytest.mark.parametrize(
    ("setting", "delay"),
    [("60", timedelta(minutes=1)), ("", timedelta(days=1)), ("soon", timedelta(days=1)),
     ("-5", timedelta(days=1)), ("7200", timedelta(hours=2))],
)  # fmt: skip
def test_the_delay_can_be_shortened_for_a_demo(
    monkeypatch: pytest.MonkeyPatch, setting: str, delay: timedelta
) -> None:
    monkeypatch.setenv("REMINDER_DELAY_SECONDS", setting)

    assert reminder_delay() == delay


@pytest.mark.parametrize(
    ("delay", "expected"),
    [(timedelta(days=1), "amanhã, neste horário"), (timedelta(days=3), "em 3 dias"),
     (timedelta(hours=1), "em 1 hora"), (timedelta(minutes=90), "em 1 hora"),
     (timedelta(minutes=2), "em 2 minutos"), (timedelta(seconds=5), "em instantes")],
)  # fmt: skip
def test_the_confirmation_says_when_in_portuguese(delay: timedelta, expected: str) -> None:
    assert when(delay) == expected


async def test_an_opt_out_cancels_the_conversations_reminders() -> None:
    messages, events = await run(ActionCancelReminders(), tracker_for("/whatsapp_opt_out"))

    assert messages == []
    assert events == [
        {
            "event": "cancel_reminder",
            "timestamp": None,
            "intent": REMINDER_INTENT,
            "entities": None,
            "name": None,
        }
    ]


# --------------------------------------------------------------------------------------------
# End to end: the trained bot, the action server, Rasa's reminder machinery.


class WhatsAppCollector(CollectingOutputChannel):
    """Collects what Rasa sends, under the WhatsApp channel's name (so its variations apply)."""

    @classmethod
    def name(cls) -> str:
        return "whatsapp"


@pytest.mark.e2e
async def test_a_reminder_fires_as_a_template_and_an_opt_out_unschedules_it(
    trained_model: Path, action_server_url: str
) -> None:
    from rasa.core import jobs
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.core.events import ReminderScheduled
    from rasa.utils.endpoints import EndpointConfig

    endpoints = AvailableEndpoints(action=EndpointConfig(url=action_server_url))
    agent = await load_agent(model_path=str(trained_model), endpoints=endpoints)
    sender = "5511912340000"
    metadata = {"whatsapp": {"profile_name": "Maria Silva"}}
    try:
        asked = WhatsAppCollector()
        request = UserMessage(
            "/pedir_lembrete", asked, sender, input_channel="whatsapp", metadata=metadata
        )
        await agent.handle_message(request)
        assert asked.messages[0]["text"].startswith("Combinado! Vou te mandar um lembrete")
        tracker = await agent.tracker_store.retrieve(sender)
        assert tracker is not None and tracker.get_slot("nome_cliente") == "Maria"
        [reminder] = [e for e in tracker.events if isinstance(e, ReminderScheduled)]
        scheduled = [job.name for job in (await jobs.scheduler()).get_jobs()]
        assert reminder.scheduled_job_name(sender) in scheduled

        # The day has come: run what the scheduler would run.
        fired = WhatsAppCollector()
        await agent.processor.handle_reminder(reminder, sender, fired)  # type: ignore[union-attr]
        [message] = fired.messages
        [result] = sent(message)
        assert_template_body(result.body, name="Maria")

        # STOP (the channel's /whatsapp_opt_out): confirmed, and the reminder is unscheduled.
        opted_out = WhatsAppCollector()
        await agent.handle_message(
            UserMessage("/whatsapp_opt_out", opted_out, sender, input_channel="whatsapp")
        )
        assert opted_out.messages[0]["text"].startswith("Pronto, você não vai mais receber")
        scheduled = [job.name for job in (await jobs.scheduler()).get_jobs()]
        assert reminder.scheduled_job_name(sender) not in scheduled
    finally:
        jobs.kill_scheduler()
