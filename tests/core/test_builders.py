"""Cloud API message bodies: exact shapes, addressing, and every limit the builders enforce."""

import logging
from typing import Any

import pytest

from connectors.whatsapp import builders, limits
from connectors.whatsapp.core.builders import MessageLimitError
from connectors.whatsapp.core.textfit import ELLIPSIS
from sandbox.validation import message_problem
from tests.support.validity import assert_valid

TO = "5511999998888"
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}


def checked(body: dict[str, Any]) -> dict[str, Any]:
    assert_valid(body)
    return body


# addressing


@pytest.mark.parametrize(
    ("to", "field"),
    [
        ("5511999998888", {"to": "5511999998888"}),
        ("+5511999998888", {"to": "+5511999998888"}),
        ("US.13491208655302741918", {"recipient": "US.13491208655302741918"}),
        ("BR.abc123", {"recipient": "BR.abc123"}),
    ],
)
def test_address_puts_phone_numbers_in_to_and_other_ids_in_recipient(
    to: str, field: dict[str, str]
) -> None:
    assert builders.address(to) == field
    body = builders.text("hi", to=to)
    assert {key: body[key] for key in ("to", "recipient") if key in body} == field


def test_a_blank_recipient_is_an_error() -> None:
    with pytest.raises(MessageLimitError, match="recipient"):
        builders.address("  ")


def test_to_is_omitted_when_none_and_reply_to_adds_context() -> None:
    body = builders.text("hi")
    assert "to" not in body and "recipient" not in body
    assert body["messaging_product"] == "whatsapp"
    assert body["recipient_type"] == "individual"
    quoted = builders.text("hi", to=TO, reply_to="wamid.ABC")
    assert quoted["context"] == {"message_id": "wamid.ABC"}


def test_complete_fills_the_envelope_and_keeps_what_is_given() -> None:
    custom = {"type": "text", "text": {"body": "hi"}}
    assert builders.complete(custom, TO) == {**ENVELOPE, **custom}
    assert builders.complete(custom, "US.1")["recipient"] == "US.1"
    addressed = {"to": "111", "recipient_type": "group", **custom}
    completed = builders.complete(addressed, TO)
    assert completed["to"] == "111"
    assert completed["recipient_type"] == "group"
    by_bsuid = builders.complete({"recipient": "US.9", **custom}, TO)
    assert "to" not in by_bsuid


def test_complete_copies_the_given_body() -> None:
    inner = {"body": "hi"}
    completed = builders.complete({"type": "text", "text": inner}, TO)
    completed["text"]["body"] = "changed"
    assert inner == {"body": "hi"}


# text


def test_text_body() -> None:
    assert checked(builders.text("Hello", to=TO)) == {
        **ENVELOPE,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }
    assert builders.text("see https://x.org", to=TO, preview_url=True)["text"]["preview_url"]


def test_text_at_the_limit_passes_and_over_it_raises() -> None:
    checked(builders.text("a" * limits.TEXT_BODY, to=TO))
    with pytest.raises(MessageLimitError, match="4096"):
        builders.text("a" * (limits.TEXT_BODY + 1), to=TO)
    with pytest.raises(MessageLimitError, match="4096"):
        builders.text("😀" * (limits.TEXT_BODY // 2 + 1), to=TO)


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_text_raises(blank: str) -> None:
    with pytest.raises(MessageLimitError, match="blank"):
        builders.text(blank, to=TO)


# reply buttons


def test_reply_buttons_body() -> None:
    body = builders.reply_buttons(
        "Pick one", [("/yes", "Yes"), ("/no", "No")], header="Question", footer="Thanks", to=TO
    )
    assert checked(body) == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Question"},
            "body": {"text": "Pick one"},
            "footer": {"text": "Thanks"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "/yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "/no", "title": "No"}},
                ]
            },
        },
    }


def test_reply_buttons_take_a_media_header() -> None:
    header = builders.media_header("image", link="https://x.org/a.png")
    body = checked(builders.reply_buttons("b", [("1", "One")], header=header, to=TO))
    assert body["interactive"]["header"] == {
        "type": "image",
        "image": {"link": "https://x.org/a.png"},
    }


@pytest.mark.parametrize("count", [0, limits.REPLY_BUTTONS_MAX + 1])
def test_reply_button_count_outside_one_to_three_raises(count: int) -> None:
    buttons = [(str(i), f"B{i}") for i in range(count)]
    with pytest.raises(MessageLimitError, match="1 to 3"):
        builders.reply_buttons("b", buttons, to=TO)


def test_reply_button_titles_are_fitted_unique_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long = "Schedule an appointment"
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.builders"):
        body = checked(builders.reply_buttons("b", [("1", long), ("2", long), ("3", "Ok")], to=TO))
    titles = [b["reply"]["title"] for b in body["interactive"]["action"]["buttons"]]
    assert titles == ["Schedule an appoint" + ELLIPSIS, "Schedule an appoi" + ELLIPSIS + " 2", "Ok"]
    assert "button title" in caplog.text


def test_reply_button_ids_are_never_changed() -> None:
    checked(builders.reply_buttons("b", [("x" * limits.REPLY_BUTTON_ID, "t")], to=TO))
    with pytest.raises(MessageLimitError, match="256"):
        builders.reply_buttons("b", [("x" * (limits.REPLY_BUTTON_ID + 1), "t")], to=TO)
    with pytest.raises(MessageLimitError, match="twice"):
        builders.reply_buttons("b", [("a", "A"), ("a", "B")], to=TO)
    with pytest.raises(MessageLimitError, match="whitespace"):
        builders.reply_buttons("b", [(" a", "A")], to=TO)
    with pytest.raises(MessageLimitError, match="blank"):
        builders.reply_buttons("b", [("", "A")], to=TO)


def test_interactive_body_header_and_footer_limits() -> None:
    buttons = [("1", "One")]
    checked(builders.reply_buttons("b" * limits.INTERACTIVE_BODY, buttons, to=TO))
    with pytest.raises(MessageLimitError, match="1024"):
        builders.reply_buttons("b" * (limits.INTERACTIVE_BODY + 1), buttons, to=TO)
    with pytest.raises(MessageLimitError, match="blank"):
        builders.reply_buttons("", buttons, to=TO)
    checked(builders.reply_buttons("b", buttons, header="h" * limits.HEADER_TEXT, to=TO))
    with pytest.raises(MessageLimitError, match="header"):
        builders.reply_buttons("b", buttons, header="h" * (limits.HEADER_TEXT + 1), to=TO)
    with pytest.raises(MessageLimitError, match="footer"):
        builders.reply_buttons("b", buttons, footer="f" * (limits.FOOTER_TEXT + 1), to=TO)
    with pytest.raises(MessageLimitError, match="header"):
        builders.reply_buttons("b", buttons, header={"type": "audio", "audio": {}}, to=TO)


# lists


def test_list_message_body() -> None:
    body = builders.list_message(
        "Our menu",
        "See options",
        [("Drinks", [("tea", "Tea", "Hot"), ("coffee", "Coffee", None)])],
        header="Menu",
        footer="Prices in EUR",
        to=TO,
    )
    assert checked(body)["interactive"] == {
        "type": "list",
        "header": {"type": "text", "text": "Menu"},
        "body": {"text": "Our menu"},
        "footer": {"text": "Prices in EUR"},
        "action": {
            "button": "See options",
            "sections": [
                {
                    "title": "Drinks",
                    "rows": [
                        {"id": "tea", "title": "Tea", "description": "Hot"},
                        {"id": "coffee", "title": "Coffee"},
                    ],
                }
            ],
        },
    }


def test_list_of_ten_rows_passes_and_eleven_raise() -> None:
    rows = [(f"r{i}", f"Row {i}", None) for i in range(limits.LIST_ROWS_MAX)]
    checked(builders.list_message("b", "Open", [(None, rows)], to=TO))
    split = [("A", rows[:5]), ("B", [*rows[5:], ("r10", "Row 10", None)])]
    with pytest.raises(MessageLimitError, match="1 to 10 rows"):
        builders.list_message("b", "Open", split, to=TO)
    with pytest.raises(MessageLimitError, match="1 to 10 rows"):
        builders.list_message("b", "Open", [(None, [])], to=TO)


def test_list_sections_limits() -> None:
    row = [("r", "Row", None)]
    with pytest.raises(MessageLimitError, match="sections"):
        builders.list_message("b", "Open", [], to=TO)
    eleven = [(f"S{i}", [(f"r{i}", f"Row {i}", None)]) for i in range(limits.LIST_SECTIONS_MAX + 1)]
    with pytest.raises(MessageLimitError, match="sections"):
        builders.list_message("b", "Open", eleven, to=TO)
    with pytest.raises(MessageLimitError, match="title"):
        builders.list_message("b", "Open", [("A", row), (None, [("s", "S", None)])], to=TO)


def test_list_labels_are_fitted_and_ids_are_not() -> None:
    long_title = "A very long row title that does not fit"
    body = builders.list_message(
        "b",
        "Open the list of options",
        [("A section title that is too long", [("id", long_title, "d" * 100)])],
        to=TO,
    )
    action = checked(body)["interactive"]["action"]
    assert action["button"] == "Open the list of op" + ELLIPSIS
    section = action["sections"][0]
    assert section["title"] == "A section title that is" + ELLIPSIS
    assert section["rows"][0]["title"] == "A very long row title t" + ELLIPSIS
    assert section["rows"][0]["description"] == "d" * 71 + ELLIPSIS
    rows = [("x" * limits.LIST_ROW_ID, "t", None)]
    checked(builders.list_message("b", "O", [(None, rows)], to=TO))
    with pytest.raises(MessageLimitError, match="200"):
        builders.list_message("b", "O", [(None, [("x" * (limits.LIST_ROW_ID + 1), "t", None)])])


def test_list_row_titles_are_unique() -> None:
    rows = [("1", "Same", None), ("2", "same", None)]
    body = checked(builders.list_message("b", "O", [(None, rows)], to=TO))
    titles = [row["title"] for row in body["interactive"]["action"]["sections"][0]["rows"]]
    assert titles == ["Same", "same 2"]


def test_list_header_can_only_be_text() -> None:
    header = builders.media_header("image", link="https://x.org/a.png")
    with pytest.raises(MessageLimitError, match="text header"):
        builders.list_message("b", "O", [(None, [("1", "t", None)])], header=header)  # type: ignore[arg-type]


# CTA URL and location request


def test_cta_url_body() -> None:
    body = builders.cta_url("Book now", "Open the booking page", "https://x.org/book", to=TO)
    assert checked(body)["interactive"] == {
        "type": "cta_url",
        "body": {"text": "Book now"},
        "action": {
            "name": "cta_url",
            "parameters": {
                "display_text": "Open the booking pa" + ELLIPSIS,
                "url": "https://x.org/book",
            },
        },
    }


def test_location_request_body() -> None:
    assert checked(builders.location_request("Where are you?", to=TO)) == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "location_request_message",
            "body": {"text": "Where are you?"},
            "action": {"name": "send_location"},
        },
    }
    with pytest.raises(MessageLimitError):
        builders.location_request("x" * (limits.INTERACTIVE_BODY + 1))


# media


@pytest.mark.parametrize("builder", [builders.image, builders.video, builders.document])
def test_captioned_media(builder: Any) -> None:
    body = checked(builder(link="https://x.org/f", caption="c", to=TO))
    kind = body["type"]
    assert body[kind] == {"link": "https://x.org/f", "caption": "c"}
    assert checked(builder(media_id="123", to=TO))[kind] == {"id": "123"}
    checked(builder(media_id="1", caption="c" * limits.CAPTION, to=TO))
    with pytest.raises(MessageLimitError, match="1024"):
        builder(media_id="1", caption="c" * (limits.CAPTION + 1), to=TO)


@pytest.mark.parametrize(
    "builder", [builders.image, builders.video, builders.audio, builders.document, builders.sticker]
)
def test_media_needs_exactly_one_of_link_and_id(builder: Any) -> None:
    with pytest.raises(MessageLimitError, match="exactly one"):
        builder(to=TO)
    with pytest.raises(MessageLimitError, match="exactly one"):
        builder(link="https://x.org/f", media_id="1", to=TO)


def test_document_filename_and_captionless_media() -> None:
    body = checked(builders.document(link="https://x.org/f", filename="report.pdf", to=TO))
    assert body["document"] == {"link": "https://x.org/f", "filename": "report.pdf"}
    assert checked(builders.audio(media_id="9", to=TO))["audio"] == {"id": "9"}
    assert checked(builders.sticker(link="https://x.org/s.webp", to=TO))["type"] == "sticker"


# location, contacts, reaction, template, read receipt


def test_location_body_and_ranges() -> None:
    body = checked(builders.location(-23.5, -46.6, name="Office", address="Av. Paulista", to=TO))
    assert body["location"] == {
        "latitude": -23.5,
        "longitude": -46.6,
        "name": "Office",
        "address": "Av. Paulista",
    }
    with pytest.raises(MessageLimitError, match="latitude"):
        builders.location(91, 0)
    with pytest.raises(MessageLimitError, match="longitude"):
        builders.location(0, float("nan"))


def test_contacts_body() -> None:
    card = {"name": {"formatted_name": "Ana Souza", "first_name": "Ana"}, "phones": []}
    assert checked(builders.contacts([card], to=TO))["contacts"] == [card]
    with pytest.raises(MessageLimitError, match="formatted_name"):
        builders.contacts([{"name": {}}])
    with pytest.raises(MessageLimitError, match="at least one"):
        builders.contacts([])


def test_reaction_body_and_removal() -> None:
    body = checked(builders.reaction("wamid.X", "👍", to=TO))
    assert body["reaction"] == {"message_id": "wamid.X", "emoji": "👍"}
    assert checked(builders.reaction("wamid.X", "", to=TO))["reaction"]["emoji"] == ""


def test_template_body() -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]
    body = checked(builders.template("hello", "pt_BR", components=components, to=TO))
    assert body["template"] == {
        "name": "hello",
        "language": {"code": "pt_BR"},
        "components": components,
    }
    assert "components" not in builders.template("hello", "en")["template"]


def test_mark_as_read_body() -> None:
    assert builders.mark_as_read("wamid.X") == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
    }
    assert checked(builders.mark_as_read("wamid.X", typing_indicator=True)) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
        "typing_indicator": {"type": "text"},
    }


def test_the_validator_catches_a_body_over_a_limit() -> None:
    """The oracle used everywhere else must itself fail on a bad body."""
    title = builders.reply_buttons("b", [("1", "One")], to=TO)
    title["interactive"]["action"]["buttons"][0]["reply"]["title"] = "t" * 21
    body = builders.reply_buttons("b", [("1", "One")], to=TO)
    body["interactive"]["body"]["text"] = "😀" * 513  # 1026 UTF-16 units, limit 1024
    assert "['title']" in (message_problem(title) or "")
    assert "['body']['text']" in (message_problem(body) or "")
    assert message_problem({"type": "text", "text": {"body": "x"}})  # no envelope
    with pytest.raises(AssertionError, match="would refuse"):
        assert_valid(builders.text("ok", to=TO), title)


def test_only_business_scoped_user_ids_are_addressed_as_recipient() -> None:
    assert builders.address("US.13491208655302741918") == {"recipient": "US.13491208655302741918"}
    assert builders.address("5511987654321") == {"to": "5511987654321"}
    assert builders.address("+5511987654321") == {"to": "+5511987654321"}
    # Any other conversation id (Rasa's trigger_intent on "test_user", say) keeps `to`.
    assert builders.address("test_user") == {"to": "test_user"}
