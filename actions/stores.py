"""The nearest store to a location the user shared on WhatsApp."""

from typing import Final

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.catalogue import OPENING_HOURS
from actions.geo import directions_url, nearest_store
from actions.tracker import Events, as_float, as_text, entity_or_slot, is_whatsapp, latest_entity
from actions.wording import format_distance, quote
from connectors.whatsapp import builders

FAR_KM: Final = 50.0
"""Farther than this from every store, the user is told that we deliver instead."""


class ActionNearestStore(Action):
    """`action_loja_mais_proxima`: answers a shared location with the nearest store.

    The WhatsApp channel sends a shared location as `/whatsapp_location{"latitude": ...,
    "longitude": ..., "location_name": ..., "location_address": ...}` (name and address only for
    a place, not for the user's own position). On WhatsApp the store comes as a location pin
    (`builders.location`) that opens in the maps app; elsewhere as a directions link.
    """

    def name(self) -> str:
        return "action_loja_mais_proxima"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        latitude = as_float(entity_or_slot(tracker, "latitude"))
        longitude = as_float(entity_or_slot(tracker, "longitude"))
        if (
            latitude is None
            or longitude is None
            or not -90 <= latitude <= 90
            or not -180 <= longitude <= 180
        ):
            dispatcher.utter_message(text="Não consegui ler a sua localização. 😕")
            dispatcher.utter_message(response="utter_pedir_localizacao")
            return []

        place_name = as_text(latest_entity(tracker, "location_name"))
        place_address = as_text(latest_entity(tracker, "location_address"))
        place = " - ".join(part for part in (place_name, place_address) if part)
        where = f"📍 Você está em {quote(place)}." if place else "📍 Recebi sua localização."

        store, km = nearest_store(latitude, longitude)
        distance = format_distance(km)
        if km > FAR_KM:
            answer = (
                f"{where} Ainda não temos loja na sua região: a mais próxima é a *{store.name}*, "
                f"a {distance} daí. Mas entregamos em todo o Brasil pelo site!"
            )
        else:
            answer = (
                f"{where} A loja mais próxima é a *{store.name}*, a {distance} de você:\n"
                f"{store.address}, São Paulo - SP\n{OPENING_HOURS}"
            )
        dispatcher.utter_message(text=answer)
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.location(
                    store.latitude, store.longitude, name=store.name, address=store.address
                )
            )
        else:
            dispatcher.utter_message(
                text="Como chegar:",
                buttons=[{"title": "Abrir no mapa", "url": directions_url(store)}],
            )
        return [SlotSet("latitude", latitude), SlotSet("longitude", longitude)]
