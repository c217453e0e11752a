"""The greeting: by the WhatsApp profile name, in the user's language."""

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.tracker import Events, first_name, latest_intent


class ActionGreet(Action):
    """`action_saudar`: greets by the WhatsApp profile name, in English after an English greeting.

    The rules follow it with `utter_menu`, which stays in Portuguese.
    """

    def name(self) -> str:
        return "action_saudar"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        name = first_name(tracker)
        if latest_intent(tracker) == "greet_en":
            hello = f"Hi, {name}! 👋" if name else "Hi! 👋"
            dispatcher.utter_message(
                text=f"{hello} I'm the virtual assistant of Loja Exemplo. I speak Brazilian "
                "Portuguese, so the menu below is in Portuguese: just tap an option."
            )
        else:
            hello = f"Olá, {name}! 👋" if name else "Olá! 👋"
            dispatcher.utter_message(text=f"{hello} Eu sou o assistente virtual da Loja Exemplo.")
        return []
