"""Properties of rendering over arbitrary text and buttons.

For any text (emoji, surrogate pairs, combining marks, long paragraphs) and 0-30 buttons with
arbitrary titles and payloads within Meta's id limits:

- the Cloud API would take every body (checked by the sandbox's validation, the suite's oracle);
- the text pieces, in order, give back the bot's text (only whitespace at cut points differs);
- every payload is the id of exactly one button or row, and every URL is one CTA;
- titles are unique within each message.
"""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.whatsapp import limits
from connectors.whatsapp.core.rendering import RenderOptions, render_bot_message
from tests.support.validity import assert_valid

TO = "5511999998888"
PAIR = "\ud83d\ude00"  # a surrogate pair kept as two code points

chunks = st.one_of(
    st.text(),
    st.sampled_from([" ", "\n", "\n\n", "\r\n", "\t", "\xa0", "\u2029"]),
    st.sampled_from(["😀", PAIR, "👨\u200d👩\u200d👧", "🇧🇷", "e\u0301", "\u0301", "👍🏽", "ç"]),
    st.sampled_from(["https://rasa.com/docs", "http://x.org/a?b=c", "word", "Olá,"]),
)
short_texts = st.lists(chunks, max_size=30).map("".join)
# Repetition reaches the 1024 and 4096 limits without generating thousands of random pieces.
texts = st.one_of(
    st.none(),
    short_texts,
    st.tuples(short_texts, st.integers(min_value=1, max_value=400)).map(lambda t: t[0] * t[1]),
)
payloads = st.one_of(
    st.text(min_size=1, max_size=limits.LIST_ROW_ID).map(str.strip),
    st.text(alphabet='ab/_{}":0', min_size=150, max_size=limits.LIST_ROW_ID),
).filter(lambda p: p != "" and limits.length(p) <= limits.LIST_ROW_ID)
PROPERTY_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def bot_buttons(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(payloads, max_size=30, unique=True))
    result: list[dict[str, Any]] = []
    for index, payload in enumerate(ids):
        title = draw(st.one_of(st.none(), short_texts))
        if draw(st.integers(0, 9)) == 0:  # now and then a web_url button
            result.append({"title": title, "url": f"https://x.org/{index}", "type": "web_url"})
        else:
            result.append({"title": title, "payload": payload})
    return result


def assert_rendered_well(*bodies: dict[str, Any]) -> None:
    """The Cloud API takes every body, and the renderer's own promises beyond Meta's rules hold:
    titles within a message differ by more than case and spacing (`textfit.unique_labels`), and
    only images, videos and documents carry a caption (Meta documents none for audio or stickers).
    """
    assert_valid(*bodies)
    for body in bodies:
        action = body.get("interactive", {}).get("action", {})
        titles = [button["reply"]["title"] for button in action.get("buttons", [])]
        titles += [
            row["title"] for section in action.get("sections", []) for row in section["rows"]
        ]
        folded = [title.strip().casefold() for title in titles]
        assert len(set(folded)) == len(folded), f"titles not distinct: {titles!r}"
        kind = body["type"]
        if kind in ("audio", "sticker"):
            assert "caption" not in body[kind], body
        if kind in ("image", "video", "audio", "sticker"):
            assert "filename" not in body[kind], body


def assert_only_whitespace_lost(original: str, pieces: list[str]) -> None:
    position = 0
    for piece in pieces:
        found = original.find(piece, position)
        assert found >= 0, f"{piece!r} missing or out of order"
        assert original[position:found].strip() == "", f"lost {original[position:found]!r}"
        position = found + len(piece)
    assert original[position:].strip() == "", f"lost the end {original[position:]!r}"


def text_pieces(bodies: list[dict[str, Any]]) -> list[str]:
    """The bot's text as rendered: text messages, then the first interactive body."""
    pieces: list[str] = []
    for body in bodies:
        if body["type"] == "text":
            pieces.append(body["text"]["body"])
        elif body["type"] == "interactive":
            pieces.append(body["interactive"]["body"]["text"])
            break
    return pieces


def ids_of(bodies: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for body in bodies:
        action = body.get("interactive", {}).get("action", {})
        ids += [button["reply"]["id"] for button in action.get("buttons", [])]
        ids += [row["id"] for section in action.get("sections", []) for row in section["rows"]]
    return ids


def urls_of(bodies: list[dict[str, Any]]) -> list[str]:
    return [
        body["interactive"]["action"]["parameters"]["url"]
        for body in bodies
        if body["type"] == "interactive" and body["interactive"]["type"] == "cta_url"
    ]


@PROPERTY_SETTINGS
@given(text=texts, buttons=bot_buttons())
def test_rendering_keeps_text_and_options_within_limits(
    text: str | None, buttons: list[dict[str, Any]]
) -> None:
    bodies = render_bot_message({"text": text, "buttons": buttons}, to=TO)
    assert_rendered_well(*bodies)

    said = text or ""
    if said.strip():  # without text, bodies are the default or a link title: nothing to keep
        pieces = text_pieces(bodies)
        assert_only_whitespace_lost(said, pieces)
        assert sum(piece.count(PAIR) for piece in pieces) == said.count(PAIR)
    elif any(button.get("payload") for button in buttons):
        assert text_pieces(bodies) == [RenderOptions().empty_body]

    payloads = [button["payload"] for button in buttons if "payload" in button]
    assert sorted(ids_of(bodies)) == sorted(payloads)
    assert urls_of(bodies) == [button["url"] for button in buttons if "url" in button]
    lists = [b for b in bodies if b["type"] == "interactive" and b["interactive"]["type"] == "list"]
    if len(payloads) > limits.REPLY_BUTTONS_MAX:
        assert len(lists) == -(-len(payloads) // limits.LIST_ROWS_MAX)


@PROPERTY_SETTINGS
@given(text=texts)
def test_quick_replies_without_buttons_render_the_same_way(text: str | None) -> None:
    quick = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    assert render_bot_message({"text": text, "quick_replies": quick}, to=TO) == render_bot_message(
        {"text": text, "buttons": quick}, to=TO
    )


@PROPERTY_SETTINGS
@given(caption=texts, kind=st.sampled_from(["image", "video", "document", "audio", "sticker"]))
def test_captions_are_never_lost(caption: str | None, kind: str) -> None:
    attachment = {"type": kind, "link": "https://x.org/file", "caption": caption}
    bodies = render_bot_message({"attachment": attachment}, to=TO)
    assert_rendered_well(*bodies)
    assert bodies[-1]["type"] == kind
    pieces = [body["text"]["body"] for body in bodies if body["type"] == "text"]
    if "caption" in bodies[-1][kind]:
        pieces.append(bodies[-1][kind]["caption"])
    assert_only_whitespace_lost(caption or "", pieces)


@PROPERTY_SETTINGS
@given(
    elements=st.lists(
        st.fixed_dictionaries(
            {"title": st.one_of(st.none(), short_texts), "subtitle": st.one_of(st.none(), texts)},
            optional={
                "image_url": st.just("https://x.org/e.jpg"),
                "buttons": bot_buttons(),
            },
        ),
        max_size=4,
    )
)
def test_elements_stay_within_limits(elements: list[dict[str, Any]]) -> None:
    bodies = render_bot_message({"elements": elements}, to=TO)
    assert_rendered_well(*bodies)
    payloads = [
        button["payload"]
        for element in elements
        for button in element.get("buttons") or []
        if "payload" in button
    ]
    assert sorted(ids_of(bodies)) == sorted(payloads)
