"""What reaches the bot from the 2026 platform: opt-outs, edits, revokes, groups, identities.

Built from the fixtures under tests/fixtures/webhooks (Meta's documented shapes), through the real
parser and the real identity store.
"""

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.identity import IdentityStore
from connectors.whatsapp.core.inbound import (
    InboundOptions,
    Translator,
    fold,
    opt_out_keywords,
    to_bot_input,
)
from connectors.whatsapp.core.parsing import parse_webhook
from tests.core.fixtures import load_fixture
from tests.core.test_parsing import envelopes
from tests.support.webhooks import text_message

WA_ID = "5511987654321"
BSUID = "BR.13491208655302741918"
GROUP = "Y2FwaV9ncm91cDoxMjAzNjMwNDI3NzgxNjQ4OTQ="


def message_from(payload: dict[str, Any]) -> InboundMessage:
    [message] = [e for e in parse_webhook(payload) if isinstance(e, InboundMessage)]
    return message


def text(body: str) -> InboundMessage:
    return message_from(text_message(WA_ID, body)[0])


@pytest.mark.parametrize("body", ["STOP", "stop", " Parar ", "SAÍR", "sair!", "Stop."])
def test_an_opt_out_keyword_reaches_the_bot_as_the_opt_out_intent(body: str) -> None:
    bot_input = to_bot_input(text(body))
    assert bot_input is not None and bot_input.text == "/whatsapp_opt_out"


@pytest.mark.parametrize("body", ["stop sending me this", "please stop", "sairá", "STOPS"])
def test_only_the_whole_message_is_an_opt_out(body: str) -> None:
    bot_input = to_bot_input(text(body))
    assert bot_input is not None and bot_input.text == body


def test_opt_out_keywords_and_intent_are_configurable() -> None:
    options = InboundOptions(
        opt_out_keywords=opt_out_keywords("cancelar, BAJA"), opt_out_intent="sair"
    )
    assert (to_bot_input(text("Cancelar"), options=options) or _none()).text == "/sair"
    assert (to_bot_input(text("stop"), options=options) or _none()).text == "stop"
    off = InboundOptions(opt_out_intent=None)
    assert (to_bot_input(text("STOP"), options=off) or _none()).text == "STOP"


def test_fold_ignores_case_accents_and_punctuation() -> None:
    assert fold("  Páràr!! ") == "parar"


def test_an_edit_reaches_the_bot_with_its_new_text_and_a_flag() -> None:
    bot_input = to_bot_input(message_from(load_fixture("edit")))
    assert bot_input is not None
    assert bot_input.text == "Does it come in another colour?"
    whatsapp = bot_input.metadata["whatsapp"]
    assert whatsapp["edited"] is True
    assert whatsapp["original_message_id"].startswith("wamid.")


def test_with_edits_off_an_edit_sends_nothing() -> None:
    assert (
        to_bot_input(message_from(load_fixture("edit")), options=InboundOptions(edits=False))
        is None
    )


@pytest.mark.parametrize("name", ["revoke", "call_permission_reply"])
def test_revokes_and_call_permission_replies_never_reach_the_bot(name: str) -> None:
    assert to_bot_input(message_from(load_fixture(name))) is None


def test_a_group_message_belongs_to_the_group_with_the_member_in_the_metadata() -> None:
    bot_input = to_bot_input(message_from(load_fixture("group_text")))
    assert bot_input is not None
    assert bot_input.sender_id == GROUP
    whatsapp = bot_input.metadata["whatsapp"]
    assert whatsapp["group_id"] == GROUP
    assert whatsapp["participant"] == {
        "wa_id": WA_ID,
        "user_id": BSUID,
        "profile_name": "Maria Silva",
    }
    assert "wa_id" not in whatsapp  # the member's ids are said once, under participant


def test_metadata_names_every_id_seen() -> None:
    bot_input = to_bot_input(message_from(load_fixture("text_phone_and_bsuid")))
    assert bot_input is not None
    whatsapp = bot_input.metadata["whatsapp"]
    assert (whatsapp["wa_id"], whatsapp["user_id"], whatsapp["parent_user_id"]) == (
        WA_ID,
        BSUID,
        "BR.ENT.11815799212886844830",
    )
    username = to_bot_input(message_from(load_fixture("text_bsuid")))
    assert username is not None
    assert username.metadata["whatsapp"]["username"] == "@mariasilva"
    assert "wa_id" not in username.metadata["whatsapp"]


async def test_a_members_number_picks_the_groups_last_menu_option() -> None:
    identities = IdentityStore()
    await identities.remember_menu(GROUP, ["/ver_categorias", "/ver_carrinho", "/ajuda"])
    translate = Translator(identities=identities)
    payload = load_fixture("group_text")
    raw = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    for answer, expected in [("2", "/ver_carrinho"), (" 3. ", "/ajuda"), ("4", "4"), ("2x", "2x")]:
        raw["text"]["body"] = answer
        raw["id"] = f"wamid.menu-{answer.strip()}"
        bot_input = await translate(message_from(payload))
        assert bot_input is not None
        assert (bot_input.sender_id, bot_input.text) == (GROUP, expected)


async def test_outside_a_group_a_number_is_just_text() -> None:
    identities = IdentityStore()
    await identities.remember_menu(WA_ID, ["/a", "/b"])
    bot_input = await Translator(identities=identities)(text("2"))
    assert bot_input is not None and bot_input.text == "2"


def _none() -> Any:
    raise AssertionError("expected a bot input")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_no_webhook_makes_parsing_identity_or_bot_input_raise(payload: dict[str, Any]) -> None:
    # The whole inbound path on any JSON inside a valid envelope: parse, resolve the identity in
    # a real store, build the bot input. Nothing raises; what reaches the bot is well formed.
    async def run() -> None:
        identities = IdentityStore()
        await identities.remember_menu(GROUP, ["/a", "/b"])
        translate = Translator(identities=identities)
        for event in parse_webhook(payload):
            if isinstance(event, InboundMessage):
                bot_input = await translate(event)
                if bot_input is not None:
                    assert isinstance(bot_input.text, str) and bot_input.text
                    assert isinstance(bot_input.sender_id, str) and bot_input.sender_id
                    json.dumps(bot_input.metadata)

    asyncio.run(run())


def test_one_groups_messages_are_ordered_as_one_conversation() -> None:
    from connectors.whatsapp.core.queue import conversation_key

    first = message_from(load_fixture("group_text"))
    assert conversation_key(first) == GROUP
    assert conversation_key(text("oi")) == WA_ID


def test_a_lone_surrogate_survives_the_redis_queue_record() -> None:
    # JSON allows "\ud800"; UTF-8 does not. The record stored in Redis must still encode.
    from connectors.whatsapp.core.queue.records import decode_message, encode_message

    original = text("oi \ud800 tudo bem?")
    record = encode_message(original)
    record.encode("utf-8")
    assert decode_message(record).text == original.text
