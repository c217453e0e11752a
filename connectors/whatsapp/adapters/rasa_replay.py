"""A turn run again after Rasa had finished it: answer from the tracker, not with a second turn.

Why. With `queue: redis` a message's entry is done only once the turn's answers went out, and
Rasa saves the tracker before that (at the end of `MessageProcessor.handle_message`; the answers
go out after it, `core/turn_sender.py`). An instance killed in between leaves the entry to another
instance, which runs the turn again (`turn_attempt()` 2). Handing the message to Rasa once more
would log the user's message a second time, with a second round of bot events, custom actions
and their side effects (an order placed twice): "processed twice".

So on a re-run the channel first reads the conversation from Rasa's tracker store. When a user
event carries the message's id, Rasa finished that turn: its answers are the bot events after it,
and the channel sends them again, in order and under the turn's answer keys, so that those Meta
had taken before the kill are skipped (`Outbound.send`'s `answer_key`) and only the rest go out.
When the tracker does not hold the message, the turn never got as far as saving: Rasa runs it.

Only re-runs pay the tracker read; a first attempt goes straight to Rasa. A tracker store that
cannot be read makes the turn fail, and the intake retries it later, as it would if Rasa could
not read it.
"""

from typing import Any

from rasa.shared.core.events import BotUttered, UserUttered


async def saved_answers(agent: Any, sender_id: str, message_id: str) -> list[dict[str, Any]] | None:
    """The bot messages Rasa saved in answer to the user message `message_id`, or None when the
    tracker does not hold that message (or there is no agent or tracker store to ask).

    The answers are the `BotUttered` events between that user event and the next one, each as
    Rasa handed it to the output channel (`BotUttered.message()`, as
    `MessageProcessor._send_bot_messages` does), so that they render exactly as the first time.
    """
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return None
    tracker = await store.retrieve(sender_id)
    if tracker is None:
        return None
    answers: list[BotUttered] = []  # walking back: the bot events since the last user event
    for event in reversed(tracker.events):
        if isinstance(event, BotUttered):
            answers.append(event)
        elif isinstance(event, UserUttered):
            if event.message_id == message_id:
                return [answer.message() for answer in reversed(answers)]
            answers.clear()  # a later turn's (a trigger_intent, say)
    return None
