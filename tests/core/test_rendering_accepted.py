"""Our renderer and builders never produce a body the suite's oracle (the sandbox's validation)
rejects: every builder, Rasa messages over every limit, and any text with any buttons.

The renderer applies Meta's limits; the sandbox checks them the way the Cloud API does. The two
were written separately (only the numbers and the counting rule, `limits.length`, are shared), so
agreement here is a real cross-check of both.
"""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.whatsapp import builders
from connectors.whatsapp.core.rendering import render_bot_message
from tests.support.validity import assert_valid

TO = "5511987654321"


def assert_accepted(bodies: list[dict[str, Any]]) -> None:
    assert bodies, "nothing rendered"
    assert all("status" not in body for body in bodies), "a read receipt, not a message"
    assert_valid(*bodies)


def test_builders_output_is_accepted() -> None:
    bodies = [
        builders.text("olá", to=TO, preview_url=True),
        builders.reply_buttons(
            "Pick", [("/yes", "Yes"), ("/no", "No")], header="Question", footer="f", to=TO
        ),
        builders.list_message(
            "Choose",
            "Options",
            [("Food", [("a", "Feijoada", "with rice")]), ("Drinks", [("b", "Suco", None)])],
            to=TO,
        ),
        builders.cta_url("Site", "Open", "https://example.com", to=TO),
        builders.location_request("Where?", to=TO),
        builders.image(link="https://example.com/a.png", caption="A", to=TO),
        builders.document(link="https://example.com/a.pdf", filename="a.pdf", to=TO),
        builders.audio(media_id="123", to=TO),
        builders.location(-23.56, -46.65, name="Paulista", to=TO),
        builders.contacts([{"name": {"formatted_name": "Ana"}}], to=TO),
        builders.reaction("wamid.X", "👍", to=TO),
        builders.template("hello_world", "en_US", to=TO),
    ]
    assert_accepted(bodies)


def test_over_limit_rasa_messages_render_to_accepted_bodies() -> None:
    long_title = "A very long button title that does not fit"
    messages: list[dict[str, Any]] = [
        {"text": "palavra " * 2000},
        {
            "text": "Pick",
            "buttons": [{"title": long_title + str(i), "payload": f"/p{i}"} for i in range(3)],
        },
        {
            "text": "Many",
            "buttons": [{"title": f"Option {i}", "payload": f"/o{i}"} for i in range(14)],
        },
        {"text": "x" * 3000, "buttons": [{"title": "Ok", "payload": "/ok"}]},
        {
            "text": "Visit",
            "buttons": [{"title": "Our website, the long way", "url": "https://e.com"}],
        },
        {"text": "Photo", "image": "https://example.com/photo.jpg"},
        {"attachment": "https://example.com/file.pdf"},
    ]
    for message in messages:
        assert_accepted(render_bot_message(message, to=TO))


labels = st.text(min_size=1, max_size=60).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=1, max_size=5000).filter(lambda s: s.strip() != ""),
    titles=st.lists(labels, min_size=0, max_size=14),
)
def test_any_text_and_buttons_render_to_accepted_bodies(text: str, titles: list[str]) -> None:
    buttons = [{"title": title, "payload": f"/intent{i}"} for i, title in enumerate(titles)]
    message: dict[str, Any] = {"text": text}
    if buttons:
        message["buttons"] = buttons
    assert_accepted(render_bot_message(message, to=TO))
