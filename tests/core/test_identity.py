"""The identity store: one person keeps one conversation whichever ids Meta gives, across number
and BSUID changes; addresses, the 24-hour window, group menus and sent messages.

Every scenario runs on both backends: this process's memory, and a real redis-server.
"""

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.identity import (
    IdentityStore,
    InMemoryKeyValueStore,
    RedisKeyValueStore,
)
from connectors.whatsapp.core.parsing import parse_webhook
from tests.core.fixtures import load_fixture
from tests.support.redis_server import redis_server

WA_ID = "5511987654321"
WA_ID_NEW = "5511976543210"
BSUID = "BR.13491208655302741918"
BSUID_NEW = "BR.20582319766413852029"
GROUP = "Y2FwaV9ncm91cDoxMjAzNjMwNDI3NzgxNjQ4OTQ="
NOW = 1749416383.0


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
async def identities(request: pytest.FixtureRequest) -> AsyncIterator[IdentityStore]:
    if request.param == "memory":
        store = IdentityStore(InMemoryKeyValueStore(), clock=lambda: NOW)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{request.node.name}:"
        store = IdentityStore(RedisKeyValueStore(url=url, prefix=prefix), clock=lambda: NOW)
    yield store
    await store.close()


def message(name: str, **changes: Any) -> InboundMessage:
    payload = copy.deepcopy(load_fixture(name))
    raw = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    value_ = payload["entry"][0]["changes"][0]["value"]
    if "from" not in raw:
        for contact in value_.get("contacts", []):
            contact.pop("wa_id", None)
    if "from_user_id" not in raw:
        for contact in value_.get("contacts", []):
            contact.pop("user_id", None)
    [parsed] = [e for e in parse_webhook(payload) if isinstance(e, InboundMessage)]
    return parsed


def phone_only(**changes: Any) -> InboundMessage:
    return message("text_phone_and_bsuid", from_user_id=None, from_parent_user_id=None, **changes)


def bsuid_only(**changes: Any) -> InboundMessage:
    return message("text_phone_and_bsuid", **{"from": None, "from_parent_user_id": None}, **changes)


async def test_a_person_first_seen_with_a_phone_keeps_the_phone_as_conversation(
    identities: IdentityStore,
) -> None:
    # A bot whose conversations were keyed by phone number before 2026 is unaffected.
    assert (await identities.resolve(phone_only())).conversation_id == WA_ID
    assert (await identities.resolve(message("text_phone_and_bsuid"))).conversation_id == WA_ID
    # The phone number disappears (a username user): same conversation, answers to the BSUID.
    assert (await identities.resolve(bsuid_only())).conversation_id == WA_ID
    recipient = await identities.recipient(WA_ID)
    assert (recipient.phone, recipient.user_id, recipient.phone_withheld) == (WA_ID, BSUID, True)


async def test_a_person_first_seen_without_a_phone_is_their_bsuid(
    identities: IdentityStore,
) -> None:
    assert (await identities.resolve(bsuid_only())).conversation_id == BSUID
    # Later with the phone too, then with the phone only: still the BSUID's conversation.
    assert (await identities.resolve(message("text_phone_and_bsuid"))).conversation_id == BSUID
    assert (await identities.resolve(phone_only())).conversation_id == BSUID
    recipient = await identities.recipient(BSUID)
    assert (recipient.phone, recipient.phone_withheld) == (WA_ID, False)


async def test_a_change_of_number_keeps_the_conversation(identities: IdentityStore) -> None:
    await identities.resolve(message("text_phone_and_bsuid"))
    change = message("system_user_changed_number")
    assert (await identities.resolve(change)).conversation_id == WA_ID
    # The new number and its new BSUID now lead to the same conversation.
    new_number = phone_only(**{"from": WA_ID_NEW})
    assert (await identities.resolve(new_number)).conversation_id == WA_ID
    new_bsuid = bsuid_only(from_user_id=BSUID_NEW)
    assert (await identities.resolve(new_bsuid)).conversation_id == WA_ID
    assert (await identities.recipient(WA_ID)).phone == WA_ID_NEW


async def test_a_change_of_user_id_keeps_the_conversation(identities: IdentityStore) -> None:
    await identities.resolve(bsuid_only())
    change = message("system_user_changed_user_id")
    assert (await identities.resolve(change)).conversation_id == BSUID
    assert (await identities.resolve(bsuid_only(from_user_id=BSUID_NEW))).conversation_id == BSUID
    assert (await identities.recipient(BSUID)).user_id == BSUID_NEW


async def test_a_system_message_does_not_open_the_window(identities: IdentityStore) -> None:
    await identities.resolve(phone_only(timestamp="1000"))
    await identities.resolve(message("system_user_changed_number"))
    assert (await identities.recipient(WA_ID)).last_message_at == 1000.0


async def test_the_window_is_measured_from_the_messages_timestamp(
    identities: IdentityStore,
) -> None:
    await identities.resolve(phone_only(timestamp=str(int(NOW))))
    recipient = await identities.recipient(WA_ID)
    assert recipient.last_message_at == NOW
    assert not recipient.outside_window(NOW + 24 * 3600 - 1)
    assert recipient.outside_window(NOW + 24 * 3600 + 1)
    # A redelivered older message does not move the window back.
    await identities.resolve(phone_only(timestamp=str(int(NOW) - 5000), id="wamid.older"))
    assert (await identities.recipient(WA_ID)).last_message_at == NOW


async def test_an_unknown_conversation_is_addressed_as_given(identities: IdentityStore) -> None:
    recipient = await identities.recipient("5521900000000")
    assert (recipient.phone, recipient.user_id, recipient.group) == (None, None, False)
    assert recipient.last_message_at is None
    assert not recipient.outside_window(NOW)  # unknown: Meta will say (131047) if it is closed


async def test_a_group_is_its_own_conversation_and_remembered_as_a_group(
    identities: IdentityStore,
) -> None:
    identity = await identities.resolve(message("group_text"))
    assert (identity.conversation_id, identity.group) == (GROUP, True)
    assert (await identities.recipient(GROUP)).group
    # The member's own private conversation is not touched by their group message.
    assert (await identities.recipient(WA_ID)).last_message_at is None
    await identities.remember_menu(GROUP, ["/a", "/b"])
    assert (await identities.resolve(message("group_text", id="wamid.2"))).menu == ("/a", "/b")


async def test_a_sent_message_is_taken_once(identities: IdentityStore) -> None:
    await identities.remember_sent("wamid.out", WA_ID, "106540352242922", {"text": "Oi"})
    sent = await identities.take_sent("wamid.out")
    assert sent is not None
    assert (sent.conversation_id, sent.phone_number_id, sent.message) == (
        WA_ID,
        "106540352242922",
        {"text": "Oi"},
    )
    assert await identities.take_sent("wamid.out") is None
    assert await identities.take_sent("wamid.never") is None


async def test_ids_with_lone_surrogates_do_not_raise(identities: IdentityStore) -> None:
    odd = bsuid_only(from_user_id="BR.\ud800" + "9" * 30_000)
    identity = await identities.resolve(odd)
    assert identity.conversation_id.startswith("BR.")
    assert (await identities.recipient(identity.conversation_id)).user_id == odd.user_id


async def test_memory_entries_expire_and_are_bounded() -> None:
    now = [0.0]
    store = InMemoryKeyValueStore(max_entries=2, clock=lambda: now[0])
    await store.set("a", "1", 10)
    await store.set("b", "2", 10)
    await store.set("c", "3", 10)
    assert (await store.get("a"), await store.get("c")) == (None, "3")
    now[0] = 11
    assert await store.get("b") is None


async def test_redis_keys_expire(redis_url: str) -> None:
    import redis.asyncio

    store = RedisKeyValueStore(url=redis_url, prefix="test:ttl:")
    await store.set("k", "v", 100)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert 0 < await client.ttl("test:ttl:k") <= 100
    finally:
        await client.close()
        await store.close()


async def test_many_keys_are_read_and_written_at_once(identities: IdentityStore) -> None:
    store = identities.store
    await store.set_many({"a": "1", "b": "2"}, 100)
    assert await store.get_many(["b", "missing", "a"]) == ["2", None, "1"]
    assert await store.get_many([]) == []
    await store.set_many({}, 100)  # nothing to write is not an error


async def test_a_returning_person_costs_one_mget_and_one_set(redis_url: str) -> None:
    """Their ids and their likely record are read with one MGET (a GET per key took up to five
    sequential round trips); only their record is written, the links once a day; every key
    keeps its expiry."""
    import redis.asyncio

    prefix = "test:round-trips:"
    now = [NOW]
    store = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: now[0])
    client = redis.asyncio.Redis.from_url(redis_url)

    async def commands() -> dict[str, int]:
        stats = await client.info("commandstats")
        await client.config_resetstat()
        return {
            name.removeprefix("cmdstat_"): value["calls"]
            for name, value in stats.items()
            if not name.startswith(("cmdstat_info", "cmdstat_config"))  # the counting itself
        }

    try:
        first = message("text_phone_and_bsuid")
        await store.resolve(first)
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        assert len(keys) == 4  # the phone's, the BSUID's, the parent BSUID's links; the record
        for key in keys:
            assert 0 < await client.ttl(key) <= 400 * 24 * 3600
        await commands()
        later = message("text_phone_and_bsuid", id="wamid.later", timestamp=str(int(NOW) + 60))
        assert (await store.resolve(later)).conversation_id == WA_ID
        assert await commands() == {"mget": 1, "set": 1}
        assert (await store.recipient(WA_ID)).last_message_at == NOW + 60
        now[0] = NOW + 24 * 3600  # a day later the links' expiry is moved on too
        await store.resolve(message("text_phone_and_bsuid", id="wamid.next-day"))
        calls = await commands()
        assert (calls.get("mget"), calls.get("set")) == (1, 4)
    finally:
        await client.close()
        await store.close()


async def test_many_keys_are_read_from_and_written_to_redis_itself(redis_url: str) -> None:
    import redis.asyncio

    store = RedisKeyValueStore(url=redis_url, prefix="test:raw:")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set("test:raw:theirs", "written by another instance")
        assert await store.get_many(["theirs", "nobody"]) == ["written by another instance", None]
        await store.set_many({"ours": "v\ud800"}, 100)  # a lone surrogate, as JSON allows
        assert await client.get("test:raw:ours") == "v\ud800".encode("utf-8", "surrogatepass")
        assert 0 < await client.ttl("test:raw:ours") <= 100
    finally:
        await client.close()
        await store.close()


async def test_ids_with_lone_surrogates_reach_the_other_instances(redis_url: str) -> None:
    prefix = "test:surrogates:"
    first = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    second = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    odd = bsuid_only(from_user_id="BR.\ud800123")
    try:
        conversation = (await first.resolve(odd)).conversation_id
        assert (await second.recipient(conversation)).user_id == "BR.\ud800123"
        assert (await second.resolve(odd)).conversation_id == conversation
    finally:
        await first.close()
        await second.close()


async def test_a_connection_redis_closed_does_not_split_a_person(redis_url: str) -> None:
    """Redis restarted, or closed an idle connection: the next read on it fails once. Read with
    the same connection's writes going through, a lost read would link the person's ids to a
    new conversation on every instance; the command is tried again instead."""
    import redis.asyncio

    prefix = "test:stale:"
    first = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    second = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        await second.recipient("warm-up")  # the second instance has a pooled connection
        assert (await first.resolve(bsuid_only())).conversation_id == BSUID
        for client in await observer.client_list():
            if client["cmd"] == "get":  # the second instance's idle connection
                await observer.client_kill_filter(_id=client["id"])
        assert (await second.resolve(message("text_phone_and_bsuid"))).conversation_id == BSUID
        assert (await first.resolve(phone_only())).conversation_id == BSUID
    finally:
        await observer.close()
        await first.close()
        await second.close()


async def test_after_a_failed_read_the_keys_are_not_overwritten_in_redis(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An instance that could not read a person's ids (here Redis refuses it reads: an ACL
    without GET) resolves from its own memory, and must not write that lesser knowledge over
    what the other instances wrote."""
    import redis.asyncio

    prefix = "test:doubt:"
    observer = redis.asyncio.Redis.from_url(redis_url)
    await observer.acl_setuser(
        "writer", enabled=True, nopass=True, keys=["*"], commands=["+set", "+ping", "+client"]
    )
    writer_url = redis_url.replace("redis://", "redis://writer:@")
    first = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    blind = IdentityStore(RedisKeyValueStore(url=writer_url, prefix=prefix), clock=lambda: NOW)
    try:
        assert (await first.resolve(bsuid_only())).conversation_id == BSUID
        links = {key: await observer.get(key) for key in await observer.keys(prefix + "id:*")}
        # Its read refused, the blind instance takes the person as new (its memory knows no
        # better) but keeps that to itself.
        assert (await blind.resolve(message("text_phone_and_bsuid"))).conversation_id == WA_ID
        assert {key: await observer.get(key) for key in links} == links
        assert await observer.get(prefix + "id:" + WA_ID) is None
        assert "kept in this process only" in caplog.text
    finally:
        await observer.acl_deluser("writer")
        await observer.close()
        await first.close()
        await blind.close()


async def test_redis_unreachable_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    store = IdentityStore(RedisKeyValueStore(url="redis://127.0.0.1:1/0"))
    try:
        assert (await store.resolve(phone_only())).conversation_id == WA_ID
        assert (await store.resolve(bsuid_only())).conversation_id == WA_ID
        await store.store.set_many({"k": "v"}, 100)
        assert await store.store.get_many(["k", "missing"]) == ["v", None]
    finally:
        await store.close()
    assert "Identity store unreachable" in caplog.text
