"""The sandbox rejects what Meta rejects, with Meta's codes, and takes what Meta takes."""

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.whatsapp.core import limits
from sandbox.errors import GraphError
from sandbox.validation import OutboundMessage, ReadReceipt, validate_request

TO = "5511987654321"


def message(kind: str, payload: Any, **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": TO, "type": kind, kind: payload, **extra}


def buttons(*titles: str) -> dict[str, Any]:
    return message(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Pick one"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"/b{i}", "title": title}}
                    for i, title in enumerate(titles)
                ]
            },
        },
    )


def list_body(*section_sizes: int, row_title: str = "Row") -> dict[str, Any]:
    sections = [
        {
            "title": f"Section {s}",
            "rows": [{"id": f"r{s}-{i}", "title": f"{row_title} {i}"} for i in range(size)],
        }
        for s, size in enumerate(section_sizes)
    ]
    return message(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Choose"},
            "action": {"button": "Options", "sections": sections},
        },
    )


def rejected(body: object) -> GraphError:
    with pytest.raises(GraphError) as caught:
        validate_request(body)
    return caught.value


VALID_BODIES = {
    "text": message("text", {"body": "olá", "preview_url": False}),
    "buttons": buttons("Yes", "No", "Maybe"),
    "list": list_body(5, 5),
    "cta_url": message(
        "interactive",
        {
            "type": "cta_url",
            "body": {"text": "See the menu"},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Open menu", "url": "https://example.com/m"},
            },
        },
    ),
    "location_request": message(
        "interactive",
        {
            "type": "location_request_message",
            "body": {"text": "Where are you?"},
            "action": {"name": "send_location"},
        },
    ),
    "image_link": message("image", {"link": "https://example.com/a.png", "caption": "A"}),
    "image_id": message("image", {"id": "1234567890"}),
    "document": message(
        "document", {"link": "https://example.com/a.pdf", "filename": "a.pdf", "caption": "PDF"}
    ),
    "audio": message("audio", {"id": "1234567890"}),
    "sticker": message("sticker", {"link": "https://example.com/s.webp"}),
    "location": message(
        "location", {"latitude": -23.56, "longitude": -46.65, "name": "Paulista", "address": "SP"}
    ),
    "contacts": message(
        "contacts", [{"name": {"formatted_name": "Ana Souza"}, "phones": [{"phone": "+5511"}]}]
    ),
    "reaction": message("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
    "reaction_removed": message("reaction", {"message_id": "wamid.X", "emoji": ""}),
    "template": message(
        "template",
        {
            "name": "order_update",
            "language": {"code": "pt_BR"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
        },
    ),
    "reply_context": message("text", {"body": "quoted"}, context={"message_id": "wamid.Y"}),
}


@pytest.mark.parametrize("name", sorted(VALID_BODIES))
def test_valid_bodies_are_accepted(name: str) -> None:
    result = validate_request(VALID_BODIES[name])
    assert isinstance(result, OutboundMessage)
    assert result.wa_id == TO


def test_the_recipient_is_normalised_to_digits() -> None:
    result = validate_request(message("text", {"body": "hi"}) | {"to": "+55 (11) 98765-4321"})
    assert isinstance(result, OutboundMessage)
    assert (result.to, result.wa_id) == ("+55 (11) 98765-4321", TO)


def test_read_receipt_with_typing_indicator() -> None:
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.A",
        "typing_indicator": {"type": "text"},
    }
    assert validate_request(body) == ReadReceipt("wamid.A", typing_indicator=True)
    body.pop("typing_indicator")
    assert validate_request(body) == ReadReceipt("wamid.A", typing_indicator=False)


def test_an_error_has_meta_envelope() -> None:
    error = rejected(message("text", {"body": "x" * (limits.TEXT_BODY + 1)}))
    body = error.body()["error"]
    assert error.status == 400
    assert body["code"] == 100
    assert body["type"] == "OAuthException"
    assert body["message"].startswith("(#100) ")
    assert body["error_data"]["messaging_product"] == "whatsapp"
    assert "text['body']" in body["error_data"]["details"]
    assert "4096" in body["error_data"]["details"]
    assert body["fbtrace_id"]


def test_text_at_the_limit_is_accepted_counting_utf16_units() -> None:
    validate_request(message("text", {"body": "x" * limits.TEXT_BODY}))
    validate_request(message("text", {"body": "😀" * (limits.TEXT_BODY // 2)}))
    error = rejected(message("text", {"body": "😀" * (limits.TEXT_BODY // 2) + "x"}))
    assert error.code == 100
    assert f"({limits.TEXT_BODY + 1} given)" in (error.details or "")


@given(st.text(min_size=1, max_size=limits.TEXT_BODY + 200).filter(lambda s: s.strip() != ""))
def test_text_bodies_are_judged_by_length_alone(body: str) -> None:
    try:
        validate_request(message("text", {"body": body}))
    except GraphError as error:
        assert limits.length(body) > limits.TEXT_BODY
        assert error.code == 100
    else:
        assert limits.length(body) <= limits.TEXT_BODY


def test_four_reply_buttons_are_rejected() -> None:
    error = rejected(buttons("A", "B", "C", "D"))
    assert error.code == 131009
    assert "buttons" in (error.details or "")


def test_no_reply_button_is_rejected() -> None:
    assert rejected(buttons()).code == 131009


def test_button_title_over_20_is_rejected() -> None:
    validate_request(buttons("x" * limits.REPLY_BUTTON_TITLE))
    error = rejected(buttons("x" * (limits.REPLY_BUTTON_TITLE + 1)))
    assert error.code == 100
    assert "interactive['action']['buttons'][0]['reply']['title']" in (error.details or "")


def test_duplicate_button_titles_are_rejected() -> None:
    assert rejected(buttons("Same", "Same")).code == 131009


def test_button_id_with_outer_spaces_is_rejected() -> None:
    body = buttons("A")
    body["interactive"]["action"]["buttons"][0]["reply"]["id"] = " padded"
    assert rejected(body).code == 100


def test_list_with_eleven_rows_is_rejected() -> None:
    validate_request(list_body(5, 5))
    error = rejected(list_body(6, 5))
    assert error.code == 131009
    assert "10" in (error.details or "")


def test_list_row_limits() -> None:
    assert rejected(list_body(1, row_title="x" * limits.LIST_ROW_TITLE)).code == 100
    body = list_body(1)
    body["interactive"]["action"]["sections"][0]["rows"][0]["id"] = "i" * (limits.LIST_ROW_ID + 1)
    assert rejected(body).code == 100
    body = list_body(1)
    row = body["interactive"]["action"]["sections"][0]["rows"][0]
    row["description"] = "d" * (limits.LIST_ROW_DESCRIPTION + 1)
    assert rejected(body).code == 100


def test_list_needs_section_titles_when_it_has_several() -> None:
    body = list_body(1, 1)
    del body["interactive"]["action"]["sections"][1]["title"]
    error = rejected(body)
    assert "sections'][1]['title']" in (error.details or "")
    single = list_body(2)
    del single["interactive"]["action"]["sections"][0]["title"]
    validate_request(single)


def test_list_button_label_and_header_type() -> None:
    body = list_body(1)
    body["interactive"]["action"]["button"] = "b" * (limits.LIST_BUTTON_LABEL + 1)
    assert rejected(body).code == 100
    body = list_body(1)
    body["interactive"]["header"] = {"type": "image", "image": {"link": "https://e.com/a.png"}}
    assert rejected(body).code == 100


def test_duplicate_row_ids_across_sections_are_rejected() -> None:
    body = list_body(1, 1)
    sections = body["interactive"]["action"]["sections"]
    sections[1]["rows"][0]["id"] = sections[0]["rows"][0]["id"]
    assert rejected(body).code == 131009


def test_cta_url_limits() -> None:
    good = VALID_BODIES["cta_url"]
    long_text = copy.deepcopy(good)
    long_text["interactive"]["action"]["parameters"]["display_text"] = "x" * 21
    assert rejected(long_text).code == 100
    not_http = copy.deepcopy(good)
    not_http["interactive"]["action"]["parameters"]["url"] = "ftp://example.com"
    assert rejected(not_http).code == 100


def test_interactive_body_header_footer_limits() -> None:
    body = buttons("A")
    body["interactive"]["body"]["text"] = "b" * (limits.INTERACTIVE_BODY + 1)
    assert rejected(body).code == 100
    body = buttons("A")
    body["interactive"]["header"] = {"type": "text", "text": "h" * (limits.HEADER_TEXT + 1)}
    assert rejected(body).code == 100
    body = buttons("A")
    body["interactive"]["footer"] = {"text": "f" * (limits.FOOTER_TEXT + 1)}
    assert rejected(body).code == 100


def test_location_request_takes_no_header() -> None:
    body = copy.deepcopy(VALID_BODIES["location_request"])
    body["interactive"]["header"] = {"type": "text", "text": "Hi"}
    assert rejected(body).code == 100


def test_media_needs_exactly_one_of_id_and_link() -> None:
    assert rejected(message("image", {})).code == 100
    assert rejected(message("image", {"id": "1", "link": "https://e.com/a.png"})).code == 100
    assert rejected(message("image", {"link": "not a url"})).code == 100


def test_caption_over_1024_is_rejected() -> None:
    body = message("image", {"link": "https://e.com/a.png", "caption": "c" * 1025})
    assert rejected(body).code == 100


def test_location_coordinates_must_be_numbers_in_range() -> None:
    assert rejected(message("location", {"latitude": 91, "longitude": 0})).code == 100
    assert rejected(message("location", {"latitude": "north", "longitude": 0})).code == 100
    assert rejected(message("location", {"latitude": True, "longitude": 0})).code == 100


def test_contacts_need_a_formatted_name() -> None:
    assert rejected(message("contacts", [{"name": {"first_name": "Ana"}}])).code == 100
    assert rejected(message("contacts", {"name": {"formatted_name": "Ana"}})).code == 100


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"to": TO, "type": "text", "text": {"body": "hi"}}, "messaging_product"),
        ({"messaging_product": "sms", "to": TO, "text": {"body": "hi"}}, "messaging_product"),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}, "to"),
        ({"messaging_product": "whatsapp", "to": "abc", "text": {"body": "hi"}}, "to"),
        ({"messaging_product": "whatsapp", "to": TO, "type": "fax", "fax": {}}, "type"),
        ({"messaging_product": "whatsapp", "to": TO, "type": "image"}, "image"),
        ({"messaging_product": "whatsapp", "to": TO, "text": "hi"}, "text"),
        ({"messaging_product": "whatsapp", "to": TO, "text": {"body": 5}}, "text['body']"),
        ({"messaging_product": "whatsapp", "to": TO, "text": {"body": "  "}}, "text['body']"),
        (message("text", {"body": "hi"}, recipient_type="broadcast"), "recipient_type"),
        ([1, 2], "JSON object"),
    ],
)
def test_shape_errors_are_code_100(body: object, fragment: str) -> None:
    error = rejected(body)
    assert error.code == 100
    assert fragment in f"{error.message} {error.details}"


def test_a_template_needs_name_and_language() -> None:
    assert rejected(message("template", {"language": {"code": "en"}})).code == 100
    assert rejected(message("template", {"name": "x"})).code == 100


def test_a_read_receipt_needs_a_message_id_and_a_text_typing_indicator() -> None:
    receipt = {"messaging_product": "whatsapp", "status": "read"}
    assert rejected(receipt).code == 100
    bad_typing = receipt | {"message_id": "wamid.A", "typing_indicator": {"type": "audio"}}
    assert rejected(bad_typing).code == 100
    assert rejected(receipt | {"status": "delivered", "message_id": "wamid.A"}).code == 100
