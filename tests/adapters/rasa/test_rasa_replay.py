"""Which answers a re-run finds in Rasa's tracker: a real tracker store with Rasa's own events."""

from typing import Any

from rasa.core.agent import Agent
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.whatsapp.adapters.rasa_replay import saved_answers


async def agent_with(sender: str, events: list[Any]) -> Agent:
    """Rasa's own Agent (no model needed to read trackers), its store wrapped as `rasa run`'s."""
    store = InMemoryTrackerStore(Domain.empty())
    await store.save(DialogueStateTracker.from_events(sender, events))
    return Agent(tracker_store=store)


async def test_the_answers_are_the_bot_events_between_the_message_and_the_next_one() -> None:
    buttons = [{"title": "Planos", "payload": "/planos"}]
    agent = await agent_with(
        "5511900000001",
        [
            UserUttered("oi", message_id="wamid.1"),
            BotUttered("Olá!"),
            ActionExecuted("action_listen"),
            UserUttered("menu", message_id="wamid.2"),
            SlotSet("visto", True),
            BotUttered("Escolha:", data={"buttons": buttons}),
            BotUttered("Ou escreva."),
            ActionExecuted("action_listen"),
            UserUttered("EXTERNAL: lembrete", message_id="reminder"),
            BotUttered("Lembrete!"),
        ],
    )
    answers = await saved_answers(agent, "5511900000001", "wamid.2")
    assert answers is not None
    assert [(a["text"], a.get("buttons")) for a in answers] == [
        ("Escolha:", buttons),
        ("Ou escreva.", None),
    ]
    assert await saved_answers(agent, "5511900000001", "wamid.1") is not None


async def test_a_message_the_tracker_does_not_hold_is_for_rasa_to_run() -> None:
    agent = await agent_with("5511900000002", [UserUttered("oi", message_id="wamid.1")])
    assert await saved_answers(agent, "5511900000002", "wamid.9") is None
    assert await saved_answers(agent, "5511900000003", "wamid.1") is None  # no such tracker
    assert await saved_answers(None, "5511900000002", "wamid.1") is None  # no agent


async def test_a_turn_saved_with_no_answer_is_answered_with_nothing_and_not_run_again() -> None:
    agent = await agent_with("5511900000004", [UserUttered("ok", message_id="wamid.1")])
    assert await saved_answers(agent, "5511900000004", "wamid.1") == []
