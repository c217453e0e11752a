"""A reminder the user asks for, delivered later as a WhatsApp template; opting out cancels it.

`action_agendar_lembrete` schedules a Rasa reminder (`ReminderScheduled`). When it fires, Rasa
triggers the intent `EXTERNAL_lembrete` in the conversation, and a rule answers with
`utter_lembrete`. On WhatsApp that response is a template message (its `channel: whatsapp`
variation in domain.yml), because a reminder usually arrives after the 24-hour customer-service
window has closed, and outside it Meta delivers only templates (error 131047 otherwise):
https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates and
https://developers.facebook.com/docs/whatsapp/pricing#customer-service-windows

The template's body parameter is filled from the slot `nome_cliente`, which this action sets, so
the reminder greets the user by name even if it fires days later.

Rasa keeps scheduled reminders in its process memory (APScheduler): a restart of `rasa run`
forgets them.
"""

import os
from datetime import datetime, timedelta, timezone
from typing import Final

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ReminderCancelled, ReminderScheduled, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.tracker import Events, first_name

REMINDER_NAME: Final = "lembrete"
"""Prefix of the reminder's name; the name ends with the conversation's id (`reminder_name`)."""
REMINDER_INTENT: Final = "EXTERNAL_lembrete"
"""The intent Rasa triggers when the reminder fires (declared in the domain, never typed)."""
CUSTOMER_NAME_SLOT: Final = "nome_cliente"
DEFAULT_CUSTOMER_NAME: Final = "cliente"
"""Used when WhatsApp gave no profile name: a template parameter may not be empty."""
DEFAULT_DELAY: Final = timedelta(days=1)


def reminder_name(sender_id: str) -> str:
    """One reminder per conversation: asking again replaces it, and only it.

    Rasa 3.6 uses the reminder's name as the scheduler's job id, across every conversation
    (`MessageProcessor._schedule_reminders`), so a name shared by all users would let each new
    reminder replace the previous user's.
    """
    return f"{REMINDER_NAME}:{sender_id}"


def reminder_delay() -> timedelta:
    """How long until the reminder fires: a day, or `REMINDER_DELAY_SECONDS` of the action server.

    Set `REMINDER_DELAY_SECONDS=60` to watch it arrive in the sandbox.
    """
    raw = os.environ.get("REMINDER_DELAY_SECONDS", "").strip()
    if not raw:
        return DEFAULT_DELAY
    try:
        seconds = float(raw)
    except ValueError:
        return DEFAULT_DELAY
    return timedelta(seconds=seconds) if seconds > 0 else DEFAULT_DELAY


def when(delay: timedelta) -> str:
    """The delay as the confirmation says it: "amanhã", "em 2 horas", "em 1 minuto"."""
    seconds = round(delay.total_seconds())
    if seconds == 86400:
        return "amanhã, neste horário"
    for unit, singular, plural in (
        (86400, "dia", "dias"),
        (3600, "hora", "horas"),
        (60, "minuto", "minutos"),
    ):
        if seconds >= unit:
            count = seconds // unit
            return f"em {count} {singular if count == 1 else plural}"
    return "em instantes"


class ActionScheduleReminder(Action):
    """`action_agendar_lembrete`: schedules the reminder and says when it will come."""

    def name(self) -> str:
        return "action_agendar_lembrete"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        delay = reminder_delay()
        customer_name = first_name(tracker) or DEFAULT_CUSTOMER_NAME
        dispatcher.utter_message(
            text=f"Combinado! Vou te mandar um lembrete {when(delay)}. "
            "Para não receber mais mensagens nossas, é só escrever SAIR."
        )
        return [
            SlotSet(CUSTOMER_NAME_SLOT, customer_name),
            ReminderScheduled(
                REMINDER_INTENT,
                trigger_date_time=datetime.now(timezone.utc) + delay,
                name=reminder_name(tracker.sender_id),
                kill_on_user_message=False,
            ),
        ]


class ActionCancelReminders(Action):
    """`action_cancelar_lembretes`: after an opt-out (STOP, PARAR, SAIR), nothing more is sent.

    The WhatsApp channel turns those keywords into `/whatsapp_opt_out`; the rule runs this action
    and then confirms with `utter_opt_out`.
    """

    def name(self) -> str:
        return "action_cancelar_lembretes"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        return [ReminderCancelled(intent_name=REMINDER_INTENT)]
