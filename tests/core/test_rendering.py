"""Rasa bot messages -> Cloud API bodies: every row of DESIGN.md's outbound table, every limit."""

import json
import logging
from typing import Any

import pytest

from connectors.whatsapp import limits
from connectors.whatsapp.core.builders import MessageLimitError
from connectors.whatsapp.core.rendering import RenderOptions, render_bot_message
from connectors.whatsapp.core.textfit import ELLIPSIS
from tests.support.validity import assert_valid

TO = "5511999998888"
WARNING = logging.WARNING


def render(
    message: Any, options: RenderOptions | None = None, to: str = TO
) -> list[dict[str, Any]]:
    """Render and check every body against Meta's limits."""
    bodies = render_bot_message(message, to=to, options=options)
    assert_valid(*bodies)
    return bodies


def buttons(count: int, prefix: str = "Option") -> list[dict[str, str]]:
    return [{"title": f"{prefix} {i}", "payload": f'/choose{{"n": {i}}}'} for i in range(count)]


def texts(bodies: list[dict[str, Any]]) -> list[str]:
    return [body["text"]["body"] for body in bodies if body["type"] == "text"]


def interactive(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "interactive"
    result: dict[str, Any] = body["interactive"]
    return result


def reply_buttons(body: dict[str, Any]) -> list[tuple[str, str]]:
    action = interactive(body)["action"]
    return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]


def rows(body: dict[str, Any]) -> list[dict[str, str]]:
    assert interactive(body)["type"] == "list"
    return [row for s in interactive(body)["action"]["sections"] for row in s["rows"]]


# text


def test_text_becomes_a_text_message() -> None:
    assert render({"text": "Hello!"}) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "text",
            "text": {"preview_url": False, "body": "Hello!"},
        }
    ]


def test_a_url_in_the_text_turns_the_preview_on() -> None:
    [body] = render({"text": "Read https://rasa.com/docs first"})
    assert body["text"]["preview_url"] is True
    [body] = render({"text": "No link, just rasa.com"})
    assert body["text"]["preview_url"] is False


def test_long_text_is_split_into_several_messages_without_loss() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 300 for i in range(10))
    pieces = texts(render({"text": text}))
    assert len(pieces) > 1
    assert all(len(piece) <= limits.TEXT_BODY for piece in pieces)
    assert " ".join(pieces).split() == text.split()


def test_only_the_piece_with_a_url_gets_a_preview() -> None:
    text = "a " * 3000 + "\n\nhttps://x.org/page"
    bodies = render({"text": text})
    assert [body["text"]["preview_url"] for body in bodies] == [False, True]


@pytest.mark.parametrize("message", [{}, {"text": None}, {"text": ""}, {"text": "   "}])
def test_nothing_to_say_renders_nothing(message: dict[str, Any]) -> None:
    assert render(message) == []


def test_unknown_keys_and_none_values_are_ignored() -> None:
    message = {
        "text": "Hi",
        "buttons": None,
        "quick_replies": None,
        "image": None,
        "attachment": None,
        "elements": None,
        "custom": {},
        "utter_action": "utter_greet",
        "channel": "whatsapp",
        "model_id": "abc",
        "assistant_id": "bot",
        "timestamp": 1700000000.0,
        "template": "utter_greet",
        "response": None,
        "something_new": {"x": 1},
    }
    assert texts(render(message)) == ["Hi"]


def test_a_message_that_is_not_a_dict_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(WARNING):
        assert render_bot_message(["not", "a", "dict"], to=TO) == []  # type: ignore[arg-type]
    assert "not a dict" in caplog.text


def test_a_business_scoped_user_id_is_addressed_by_recipient() -> None:
    [body] = render({"text": "Hi"}, to="US.13491208655302741918")
    assert body["recipient"] == "US.13491208655302741918"
    assert "to" not in body


def test_a_blank_recipient_is_a_clear_error() -> None:
    with pytest.raises(MessageLimitError, match="recipient"):
        render_bot_message({"text": "Hi"}, to=" ")


# text + 1-3 buttons


def test_one_to_three_buttons_become_reply_buttons() -> None:
    message = {"text": "Are you sure?", "buttons": [
        {"title": "Yes", "payload": "/affirm"},
        {"title": "No", "payload": "/deny"},
    ]}  # fmt: skip
    [body] = render(message)
    assert interactive(body)["type"] == "button"
    assert interactive(body)["body"] == {"text": "Are you sure?"}
    assert reply_buttons(body) == [("/affirm", "Yes"), ("/deny", "No")]


def test_quick_replies_are_rendered_like_buttons() -> None:
    [body] = render({"text": "Pick", "quick_replies": buttons(3)})
    assert [id_ for id_, _ in reply_buttons(body)] == [b["payload"] for b in buttons(3)]


def test_quick_replies_win_over_buttons_as_in_rasa(caplog: pytest.LogCaptureFixture) -> None:
    message = {"text": "Pick", "quick_replies": buttons(1, "Q"), "buttons": buttons(2, "B")}
    with caplog.at_level(WARNING):
        [body] = render(message)
    assert reply_buttons(body) == [(buttons(1)[0]["payload"], "Q 0")]
    assert "buttons ignored" in caplog.text


def test_button_titles_are_fitted_to_20_and_kept_unique(caplog: pytest.LogCaptureFixture) -> None:
    long = "Reschedule my appointment"
    message = {"text": "Pick", "buttons": [
        {"title": long, "payload": "/a"},
        {"title": long, "payload": "/b"},
    ]}  # fmt: skip
    with caplog.at_level(WARNING):
        [body] = render(message)
    titles = [title for _, title in reply_buttons(body)]
    assert titles == ["Reschedule my appoi" + ELLIPSIS, "Reschedule my app" + ELLIPSIS + " 2"]
    assert all(len(title) <= limits.REPLY_BUTTON_TITLE for title in titles)
    assert "button title" in caplog.text


def test_buttons_without_text_get_the_default_body() -> None:
    [body] = render({"buttons": buttons(2)})
    assert interactive(body)["body"]["text"] == "Escolha uma opção"
    options = RenderOptions(empty_body="Escolha uma opção")
    [body] = render({"text": None, "buttons": buttons(2)}, options)
    assert interactive(body)["body"]["text"] == "Escolha uma opção"


def test_text_over_the_body_limit_goes_first_as_text_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = " ".join(f"sentence{i}." for i in range(400))  # about 4400 characters
    with caplog.at_level(WARNING):
        bodies = render({"text": text, "buttons": buttons(2)})
    *lead, last = bodies
    assert lead and all(body["type"] == "text" for body in lead)
    body_text = interactive(last)["body"]["text"]
    assert len(body_text) <= limits.INTERACTIVE_BODY
    assert len(body_text) > limits.INTERACTIVE_BODY // 2
    assert (" ".join(texts(lead)) + " " + body_text).split() == text.split()
    assert "first part goes as text" in caplog.text


def test_a_button_without_payload_answers_with_its_title_and_vice_versa() -> None:
    message = {"text": "Pick", "buttons": [{"title": "Hello"}, {"payload": "/bye"}]}
    [body] = render(message)
    assert reply_buttons(body) == [("Hello", "Hello"), ("/bye", "/bye")]


def test_malformed_buttons_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    message = {"text": "Pick", "buttons": ["nope", {"title": " ", "payload": ""}, buttons(1)[0]]}
    with caplog.at_level(WARNING):
        [body] = render(message)
    assert len(reply_buttons(body)) == 1
    assert "not a dict" in caplog.text
    assert "neither title nor payload" in caplog.text


def test_buttons_that_are_not_a_list_leave_the_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(WARNING):
        assert texts(render({"text": "Hi", "buttons": "yes/no"})) == ["Hi"]
    assert "not a list" in caplog.text


def test_payload_whitespace_is_trimmed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(WARNING):
        [body] = render({"text": "Pick", "buttons": [{"title": "A", "payload": " /a "}]})
    assert reply_buttons(body) == [("/a", "A")]
    assert "outer whitespace" in caplog.text


# text + 4-10 buttons


@pytest.mark.parametrize("count", [4, 7, limits.LIST_ROWS_MAX])
def test_four_to_ten_buttons_become_a_list(count: int) -> None:
    [body] = render({"text": "Choose a day", "buttons": buttons(count)})
    assert interactive(body)["body"]["text"] == "Choose a day"
    assert interactive(body)["action"]["button"] == "Opções"
    assert [(row["id"], row["title"]) for row in rows(body)] == [
        (b["payload"], b["title"]) for b in buttons(count)
    ]
    assert all("description" not in row for row in rows(body))


def test_a_cut_row_title_keeps_the_full_title_in_its_description() -> None:
    long = "Tuesday afternoon, 14:00 to 15:30 with Dr. Ana"
    message = {"text": "When?", "buttons": [*buttons(3), {"title": long, "payload": "/t"}]}
    [body] = render(message)
    row = rows(body)[3]
    assert row["title"] == "Tuesday afternoon, 14:0" + ELLIPSIS
    assert row["description"] == long
    longer = "x" * 100
    [body] = render({"text": "When?", "buttons": [*buttons(3), {"title": longer, "payload": "/t"}]})
    assert rows(body)[3]["description"] == "x" * 71 + ELLIPSIS


def test_the_list_button_label_is_configurable_and_fitted() -> None:
    [body] = render(
        {"text": "?", "buttons": buttons(5)}, RenderOptions(list_button_label="Ver opções")
    )
    assert interactive(body)["action"]["button"] == "Ver opções"
    options = RenderOptions(list_button_label="See all the available options")
    [body] = render({"text": "?", "buttons": buttons(5)}, options)
    assert interactive(body)["action"]["button"] == "See all the availab" + ELLIPSIS


def test_list_row_titles_are_unique() -> None:
    same = [{"title": "Same", "payload": f"/p{i}"} for i in range(5)]
    [body] = render({"text": "?", "buttons": same})
    assert [row["title"] for row in rows(body)] == ["Same", "Same 2", "Same 3", "Same 4", "Same 5"]


def test_a_list_body_over_the_limit_goes_first_as_text() -> None:
    text = "word " * 500
    bodies = render({"text": text, "buttons": buttons(5)})
    assert [body["type"] for body in bodies] == ["text", "interactive"]
    assert (texts(bodies)[0] + " " + interactive(bodies[1])["body"]["text"]).split() == text.split()


# text + more than 10 buttons


@pytest.mark.parametrize(("count", "lists"), [(11, 2), (20, 2), (25, 3)])
def test_more_than_ten_buttons_become_several_lists(
    count: int, lists: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(WARNING):
        bodies = render({"text": "Pick a city", "buttons": buttons(count)})
    assert len(bodies) == lists
    assert interactive(bodies[0])["body"]["text"] == "Pick a city"
    assert [interactive(body)["body"]["text"] for body in bodies[1:]] == [
        f"Mais opções ({index}/{lists})" for index in range(2, lists + 1)
    ]
    ids = [row["id"] for body in bodies for row in rows(body)]
    assert ids == [b["payload"] for b in buttons(count)]
    assert "lists of up to 10" in caplog.text


def test_the_more_options_body_is_configurable() -> None:
    options = RenderOptions(more_options_body="Mais opções ({index} de {total})")
    bodies = render({"text": "?", "buttons": buttons(12)}, options)
    assert interactive(bodies[1])["body"]["text"] == "Mais opções (2 de 2)"


# buttons with a URL


def test_a_url_button_becomes_a_cta_url_message() -> None:
    message = {
        "text": "Our docs",
        "buttons": [
            {"title": "Open the documentation", "url": "https://rasa.com/docs", "type": "web_url"}
        ],
    }
    [body] = render(message)
    assert interactive(body) == {
        "type": "cta_url",
        "body": {"text": "Our docs"},
        "action": {
            "name": "cta_url",
            "parameters": {
                "display_text": "Open the documentat" + ELLIPSIS,
                "url": "https://rasa.com/docs",
            },
        },
    }


def test_url_and_payload_buttons_together() -> None:
    message = {
        "text": "What next?",
        "buttons": [
            {"title": "Website", "url": "https://x.org", "type": "web_url"},
            {"title": "Yes", "payload": "/affirm"},
            {"title": "Blog", "url": "https://x.org/blog"},
        ],
    }
    first, second, third = render(message)
    assert interactive(first)["body"]["text"] == "What next?"
    assert reply_buttons(first) == [("/affirm", "Yes")]
    assert interactive(second)["body"]["text"] == "Website"
    assert interactive(second)["action"]["parameters"]["url"] == "https://x.org"
    assert interactive(third)["body"]["text"] == "Blog"


def test_url_buttons_without_text_use_their_title_as_body() -> None:
    [body] = render({"buttons": [{"title": "Open", "url": "https://x.org"}]})
    assert interactive(body)["body"]["text"] == "Open"
    first, second = render({"text": "Links", "buttons": [
        {"title": "One", "url": "https://x.org/1"}, {"title": "Two", "url": "https://x.org/2"},
    ]})  # fmt: skip
    assert interactive(first)["body"]["text"] == "Links"
    assert interactive(second)["body"]["text"] == "Two"


# payloads that cannot be ids


@pytest.mark.parametrize(
    "payloads",
    [
        ["/a", "x" * (limits.REPLY_BUTTON_ID + 1)],
        ["/a", "/a"],
        ["/a", "/b", "/c", "x" * (limits.LIST_ROW_ID + 1)],
    ],
    ids=["button id too long", "duplicate", "row id too long"],
)
def test_payloads_that_cannot_be_ids_fall_back_to_a_numbered_menu(
    payloads: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    message = {
        "text": "Pick one:",
        "buttons": [{"title": f"T{i}", "payload": p} for i, p in enumerate(payloads)],
    }
    with caplog.at_level(WARNING):
        bodies = render(message)
    lines = "\n".join(f"{i + 1}. T{i}" for i in range(len(payloads)))
    assert texts(bodies) == [f"Pick one:\n\n{lines}"]
    assert "numbered text menu" in caplog.text


def test_a_payload_between_the_row_and_button_id_limits_still_fits_a_button() -> None:
    payload = "p" * limits.REPLY_BUTTON_ID
    [body] = render({"text": "?", "buttons": [{"title": "A", "payload": payload}]})
    assert reply_buttons(body) == [(payload, "A")]


# image and attachment


def test_image_is_sent_by_link() -> None:
    [body] = render({"image": "https://x.org/cat.png"})
    assert body["type"] == "image"
    assert body["image"] == {"link": "https://x.org/cat.png"}


def test_image_may_be_a_media_id() -> None:
    [body] = render({"image": "1234567890"})
    assert body["image"] == {"id": "1234567890"}


def test_text_and_image_come_in_rasa_order() -> None:
    bodies = render({"text": "Look:", "image": "https://x.org/cat.png"})
    assert [body["type"] for body in bodies] == ["text", "image"]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://x.org/report.pdf", "document"),
        ("https://x.org/files/data", "document"),
        ("https://x.org/song.MP3", "audio"),
        ("https://x.org/note.ogg?sig=1", "audio"),
        ("https://x.org/clip.mp4", "video"),
        ("https://x.org/photo.jpeg", "image"),
    ],
)
def test_attachment_url_type_is_guessed_from_the_extension(url: str, kind: str) -> None:
    [body] = render({"attachment": url})
    assert body["type"] == kind
    assert body[kind]["link"] == url


def test_a_document_attachment_gets_its_file_name() -> None:
    [body] = render({"attachment": "https://x.org/files/Relat%C3%B3rio%202024.pdf?x=1"})
    assert body["document"]["filename"] == "Relatório 2024.pdf"


def test_an_attachment_dict_is_honoured() -> None:
    attachment = {"type": "video", "id": "555", "caption": "Watch this"}
    [body] = render({"attachment": attachment})
    assert body["video"] == {"id": "555", "caption": "Watch this"}
    document = {"type": "document", "link": "https://x.org/a", "filename": "a.pdf", "caption": "c"}
    [body] = render({"attachment": document})
    assert body["document"] == {"link": "https://x.org/a", "caption": "c", "filename": "a.pdf"}
    facebook_style = {"type": "image", "payload": {"url": "https://x.org/p.png"}}
    [body] = render({"attachment": facebook_style})
    assert body["image"] == {"link": "https://x.org/p.png"}


def test_a_long_caption_goes_first_as_text(caplog: pytest.LogCaptureFixture) -> None:
    caption = "caption " * 200  # 1600 characters
    with caplog.at_level(WARNING):
        bodies = render(
            {"attachment": {"type": "image", "link": "https://x.org/a.png", "caption": caption}}
        )
    assert [body["type"] for body in bodies] == ["text", "image"]
    assert len(bodies[1]["image"]["caption"]) <= limits.CAPTION
    assert (texts(bodies)[0] + " " + bodies[1]["image"]["caption"]).split() == caption.split()


def test_audio_and_sticker_captions_go_as_text() -> None:
    bodies = render(
        {"attachment": {"type": "audio", "link": "https://x.org/a.mp3", "caption": "Listen"}}
    )
    assert [body["type"] for body in bodies] == ["text", "audio"]
    assert texts(bodies) == ["Listen"]
    assert bodies[1]["audio"] == {"link": "https://x.org/a.mp3"}
    bodies = render({"attachment": {"type": "sticker", "id": "77"}})
    assert bodies[0]["sticker"] == {"id": "77"}


@pytest.mark.parametrize("value", [42, {"type": "image"}, {"caption": "no media"}, "  "])
def test_unusable_media_is_skipped_with_a_warning(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(WARNING):
        assert render({"attachment": value}) == []
    assert "ignoring media" in caplog.text


# elements (carousel)


def test_each_element_becomes_one_message_with_its_buttons() -> None:
    elements = [
        {
            "title": "Room A",
            "subtitle": "Sea view",
            "image_url": "https://x.org/a.jpg",
            "buttons": [{"title": "Book", "payload": "/book_a"}],
        },
        {
            "title": "Room B",
            "subtitle": "Garden",
            "buttons": [{"title": "Book", "payload": "/book_b"}],
        },
    ]
    first, second = render({"elements": elements})
    assert interactive(first)["header"] == {
        "type": "image",
        "image": {"link": "https://x.org/a.jpg"},
    }
    assert interactive(first)["body"]["text"] == "Room A\nSea view"
    assert reply_buttons(first) == [("/book_a", "Book")]
    assert "header" not in interactive(second)
    assert interactive(second)["body"]["text"] == "Room B\nGarden"


def test_an_element_with_many_buttons_sends_its_image_before_the_list() -> None:
    element = {"title": "Menu", "image_url": "https://x.org/m.jpg", "buttons": buttons(6)}
    image, menu = render({"elements": [element]})
    assert image["image"] == {"link": "https://x.org/m.jpg"}
    assert len(rows(menu)) == 6
    assert "header" not in interactive(menu)


def test_an_element_with_a_url_button_gets_a_cta_with_its_image() -> None:
    element = {
        "title": "Docs",
        "image_url": "https://x.org/d.png",
        "buttons": [{"title": "Read", "url": "https://x.org/docs", "type": "web_url"}],
    }
    [body] = render({"elements": [element]})
    assert interactive(body)["type"] == "cta_url"
    assert interactive(body)["header"]["image"] == {"link": "https://x.org/d.png"}


def test_an_element_without_buttons_is_an_image_with_caption_or_text() -> None:
    bodies = render({"elements": [
        {"title": "Cat", "subtitle": "Cute", "image_url": "https://x.org/c.jpg"},
        {"title": "Just text"},
    ]})  # fmt: skip
    assert bodies[0]["image"] == {"link": "https://x.org/c.jpg", "caption": "Cat\nCute"}
    assert texts(bodies) == ["Just text"]


def test_malformed_elements_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(WARNING):
        assert render({"elements": ["x", {}]}) == []
        assert render({"elements": {"title": "not a list"}}) == []
    assert "not a dict" in caplog.text
    assert "no title" in caplog.text
    assert "not a list" in caplog.text


# custom


def test_a_custom_cloud_api_message_is_completed_and_sent_as_given() -> None:
    custom = {
        "type": "interactive",
        "interactive": {"type": "location_request_message", "body": {"text": "Where?"},
                        "action": {"name": "send_location"}},
    }  # fmt: skip
    [body] = render({"custom": custom})
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        **custom,
    }


def test_a_list_of_custom_messages_sends_each() -> None:
    custom = [
        {"type": "text", "text": {"body": "one"}},
        {"type": "location", "location": {"latitude": 1.0, "longitude": 2.0}},
    ]
    bodies = render({"custom": custom})
    assert [body["type"] for body in bodies] == ["text", "location"]


def test_other_custom_json_is_sent_as_text_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    custom = {"kind": "card", "data": {"price": 10}}
    with caplog.at_level(WARNING):
        [body] = render({"custom": custom})
    assert json.loads(body["text"]["body"]) == custom
    assert "not a Cloud API message" in caplog.text
    [body] = render({"custom": {"type": "text"}})  # a type without its object
    assert json.loads(body["text"]["body"]) == {"type": "text"}


def test_every_part_comes_in_rasa_dispatch_order() -> None:
    message = {
        "elements": [{"title": "E"}],
        "attachment": "https://x.org/a.pdf",
        "image": "https://x.org/i.png",
        "custom": {"type": "text", "text": {"body": "custom"}},
        "buttons": buttons(1),
        "text": "T",
    }
    bodies = render(message)
    assert [body["type"] for body in bodies] == ["interactive", "text", "image", "document", "text"]
    assert [body["text"]["body"] for body in bodies if body["type"] == "text"] == ["custom", "E"]


# options


def test_render_options_are_validated() -> None:
    with pytest.raises(ValueError, match="list_button_label"):
        RenderOptions(list_button_label=" ")
    with pytest.raises(ValueError, match="empty_body"):
        RenderOptions(empty_body="")
    with pytest.raises(ValueError, match="placeholders"):
        RenderOptions(more_options_body="More ({page})")
    with pytest.raises(ValueError, match="more_options_body"):
        RenderOptions(more_options_body="x" * (limits.INTERACTIVE_BODY + 1))


@pytest.mark.parametrize(
    "attachment",
    [
        {"link": "https://x.example/a.pdf", "filename": " "},
        {"type": ["x"], "link": "https://x.example/a.pdf"},
        "http://[x/a.pdf",
        {"id": " "},
    ],
)
def test_a_malformed_attachment_is_skipped_and_costs_nothing_else(attachment: object) -> None:
    bodies = render_bot_message({"text": "Segue o arquivo", "attachment": attachment}, to="5511")
    assert [body["type"] for body in bodies][:1] == ["text"]
    assert bodies[0]["text"]["body"] == "Segue o arquivo"
