"""actions/stores.py and actions/geo.py: a shared location gets the nearest store."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.catalogue import STORES, Store
from actions.geo import EARTH_RADIUS_KM, distance_km
from actions.stores import ActionNearestStore
from actions.wording import format_distance
from tests.bot.turns import customs, run, slot_events, texts, tracker_for, tracker_from_webhook


async def test_shared_location_gets_the_nearest_store_as_a_pin() -> None:
    tracker = tracker_from_webhook("location")  # MASP, Av. Paulista

    messages, events = await run(ActionNearestStore(), tracker)

    text = texts(messages)
    assert "📍 Você está em “MASP - Av. Paulista, 1578" in text
    assert "A loja mais próxima é a *Loja Paulista*, a 10 m de você" in text
    [pin] = customs(messages)
    paulista = STORES[0]
    assert pin["location"] == {
        "latitude": paulista.latitude,
        "longitude": paulista.longitude,
        "name": "Loja Paulista",
        "address": paulista.address,
    }
    assert slot_events(events) == {"latitude": -23.561414, "longitude": -46.655881}


@pytest.mark.parametrize("store", STORES, ids=lambda store: store.name)
async def test_each_store_is_the_nearest_one_at_its_own_door(store: Store) -> None:
    latitude, longitude = store.latitude + 0.001, store.longitude  # about 111 m north
    trigger = f'/whatsapp_location{{"latitude": {latitude}, "longitude": {longitude}}}'

    messages, _ = await run(ActionNearestStore(), tracker_for(trigger))

    assert f"📍 Recebi sua localização. A loja mais próxima é a *{store.name}*, a 110 m" in texts(
        messages
    )
    [pin] = customs(messages)
    assert pin["location"]["name"] == store.name


async def test_a_location_far_from_every_store_gets_the_delivery_offer() -> None:
    rio = '/whatsapp_location{"latitude": -22.9068, "longitude": -43.1729}'

    messages, _ = await run(ActionNearestStore(), tracker_for(rio))

    expected_km = min(
        distance_km(-22.9068, -43.1729, store.latitude, store.longitude) for store in STORES
    )
    assert 330 < expected_km < 370
    assert f"a {expected_km:.0f} km daí. Mas entregamos em todo o Brasil" in texts(messages)
    assert "Ainda não temos loja na sua região" in texts(messages)


async def test_location_on_other_channels_links_to_directions() -> None:
    trigger = '/whatsapp_location{"latitude": -23.6, "longitude": -46.67}'

    messages, _ = await run(ActionNearestStore(), tracker_for(trigger, channel="rest"))

    assert customs(messages) == []
    [button] = [button for message in messages for button in message["buttons"]]
    moema = STORES[2]
    assert button["url"] == (
        f"https://www.google.com/maps/dir/?api=1&destination={moema.latitude},{moema.longitude}"
    )


@pytest.mark.parametrize(
    "trigger",
    [
        "/whatsapp_location",
        '/whatsapp_location{"latitude": "norte", "longitude": -46.6}',
        '/whatsapp_location{"latitude": 123.0, "longitude": -46.6}',
        '/whatsapp_location{"latitude": -23.5, "longitude": true}',
    ],
)
async def test_an_unreadable_location_is_asked_for_again(trigger: str) -> None:
    messages, events = await run(ActionNearestStore(), tracker_for(trigger))

    assert texts(messages) == "Não consegui ler a sua localização. 😕"
    assert messages[-1]["response"] == "utter_pedir_localizacao"
    assert events == []


async def test_a_remembered_location_is_used_when_the_message_has_none() -> None:
    tracker = tracker_for("/whatsapp_location", slots={"latitude": -23.54, "longitude": -46.58})

    messages, _ = await run(ActionNearestStore(), tracker)

    assert "*Loja Tatuapé*" in texts(messages)


def test_haversine_matches_the_length_of_a_degree_of_meridian() -> None:
    one_degree = math.pi * EARTH_RADIUS_KM / 180

    assert distance_km(0, 0, 1, 0) == pytest.approx(one_degree)
    assert distance_km(-23.5, -46.6, -24.5, -46.6) == pytest.approx(one_degree)
    assert distance_km(0, 0, 0, 1) == pytest.approx(one_degree)  # on the equator


coordinates = st.tuples(
    st.floats(min_value=-90, max_value=90), st.floats(min_value=-180, max_value=180)
)


@given(coordinates, coordinates)
def test_haversine_is_a_distance(a: tuple[float, float], b: tuple[float, float]) -> None:
    ab = distance_km(*a, *b)

    assert ab == pytest.approx(distance_km(*b, *a), abs=1e-6)
    assert 0 <= ab <= math.pi * EARTH_RADIUS_KM + 1e-6
    assert distance_km(*a, *a) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize(
    ("km", "expected"),
    [(0.0, "10 m"), (0.344, "340 m"), (0.994, "990 m"), (0.996, "1,0 km"), (2.44, "2,4 km"),
     (99.94, "99,9 km"), (99.96, "100 km"), (357.4, "357 km")],
)  # fmt: skip
def test_distances_are_written_the_brazilian_way(km: float, expected: str) -> None:
    assert format_distance(km) == expected
