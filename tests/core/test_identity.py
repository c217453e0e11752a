"""The identity store: one person keeps one conversation whichever ids Meta gives, across number
and BSUID changes; addresses, the 24-hour window, group menus and sent messages.

Every scenario runs on both backends: this process's memory, and a real redis-server.
"""

import contextlib
import copy
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.identity import (
    Found,
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
    assert await store.get_many(["b", "missing", "a"]) == Found(["2", None, "1"])
    assert await store.get_many([]) == Found([])
    await store.set_many({}, 100)  # nothing to write is not an error


async def test_a_returning_person_is_read_with_one_mget_and_every_key_expires(
    redis_url: str,
) -> None:
    """Their ids and their likely record are read with one MGET (a GET per key took up to five
    sequential round trips) and written in one pipeline; every key keeps its expiry."""
    import redis.asyncio

    prefix = "test:round-trips:"
    store = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await store.resolve(message("text_phone_and_bsuid"))
        await client.config_resetstat()
        later = message("text_phone_and_bsuid", id="wamid.later", timestamp=str(int(NOW) + 60))
        assert (await store.resolve(later)).conversation_id == WA_ID
        stats = await client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
        # One MGET, no GET; the phone's, the BSUID's and the parent BSUID's links and the record.
        assert (calls.get("mget"), calls.get("get"), calls.get("set")) == (1, None, 4)
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        assert len(keys) == 4
        for key in keys:
            assert 0 < await client.ttl(key) <= 400 * 24 * 3600
        assert (await store.recipient(WA_ID)).last_message_at == NOW + 60
    finally:
        await client.close()
        await store.close()


async def test_many_keys_are_read_from_and_written_to_redis_itself(redis_url: str) -> None:
    import redis.asyncio

    store = RedisKeyValueStore(url=redis_url, prefix="test:raw:")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set("test:raw:theirs", "written by another instance")
        read = await store.get_many(["theirs", "nobody"])
        assert read == Found(["written by another instance", None])
        await store.set_many({"ours": "v\ud800"}, 100)  # a lone surrogate, as JSON allows
        assert await client.get("test:raw:ours") == "v\ud800".encode("utf-8", "surrogatepass")
        assert 0 < await client.ttl("test:raw:ours") <= 100
        # Gone from Redis (a flush, a restart without persistence), still in this process's
        # memory: read, and marked as this process's alone.
        await client.delete("test:raw:ours")
        assert await store.get_many(["theirs", "ours"]) == Found(
            ["written by another instance", "v\ud800"]
        )
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


async def test_a_command_that_times_out_once_is_tried_again(redis_url: str) -> None:
    """Redis stalls (here CLIENT PAUSE, 2.5 s against the store's 2 s socket timeout): the read
    and the pipeline of writes are tried once more, so the person resolves from Redis, not from
    this process's memory."""
    import redis.asyncio

    prefix = "test:stall:"
    first = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    second = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        await second.recipient("warm-up")  # connected before the pause
        assert (await first.resolve(bsuid_only())).conversation_id == BSUID
        await observer.execute_command("CLIENT", "PAUSE", 2500, "ALL")
        assert (await second.resolve(message("text_phone_and_bsuid"))).conversation_id == BSUID
        assert (await first.resolve(phone_only(id="wamid.after"))).conversation_id == BSUID
        await observer.execute_command("CLIENT", "PAUSE", 2500, "WRITE")
        newcomer = phone_only(**{"from": WA_ID_NEW, "id": "wamid.paused-writes"})
        resolved = await second.resolve(newcomer)  # the pipeline of its writes times out once
        link = await observer.get(prefix + "id:" + WA_ID_NEW)
        assert link is not None and link.decode() == resolved.conversation_id
    finally:
        await observer.execute_command("CLIENT", "UNPAUSE")
        await observer.close()
        await first.close()
        await second.close()


@contextlib.asynccontextmanager
async def healthy_and_blind(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[Any, IdentityStore, IdentityStore]]:
    """A Redis observer, an instance with full access, and one whose Redis refuses it reads (an
    ACL user, `blind`, without GET or MGET: `observer.acl_setuser("blind", commands=[...])`
    gives them back to its open connections)."""
    import redis.asyncio

    observer = redis.asyncio.Redis.from_url(redis_url)
    await observer.acl_setuser(
        "blind", enabled=True, nopass=True, keys=["*"], commands=["+set", "+ping", "+client"]
    )
    blind_url = redis_url.replace("redis://", "redis://blind:@")
    healthy = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    blind = IdentityStore(RedisKeyValueStore(url=blind_url, prefix=prefix), clock=lambda: NOW)
    try:
        yield observer, healthy, blind
    finally:
        await observer.acl_deluser("blind")
        await observer.close()
        await healthy.close()
        await blind.close()


async def test_after_a_failed_read_nothing_is_written_to_redis(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An instance that could not read a person's ids (here Redis refuses it reads) resolves
    from its own memory, and keeps what it concluded to itself: the person's ids, and the new
    ones a system message brings, must not be linked in Redis to a conversation the other
    instances do not know."""
    prefix = "test:blind:"
    async with healthy_and_blind(redis_url, prefix) as (observer, first, blind):
        assert (await first.resolve(bsuid_only())).conversation_id == BSUID
        before = {key: await observer.get(key) for key in await observer.keys(prefix + "*")}
        # Its read refused, the blind instance takes the person as new (its memory knows no
        # better), and a change of BSUID as a new person's too.
        assert (await blind.resolve(message("text_phone_and_bsuid"))).conversation_id == WA_ID
        await blind.resolve(message("system_user_changed_user_id"))
        after = {key: await observer.get(key) for key in await observer.keys(prefix + "*")}
        assert after == before
        # The healthy instance still links the new BSUID to the person's conversation.
        await first.resolve(message("system_user_changed_user_id"))
        assert (await first.resolve(bsuid_only(from_user_id=BSUID_NEW))).conversation_id == BSUID
        assert "Identity store unreachable" in caplog.text


async def test_after_recovery_what_redis_knows_beats_this_process_memory(redis_url: str) -> None:
    """An instance that resolved a person from its memory while it could not read Redis (its
    phone and BSUID linked, here, to the phone's conversation) reads Redis again: the link Redis
    holds for the BSUID wins over the phone's link that only this process's memory holds, so the
    person stays in the conversation every instance knows instead of being moved to it."""
    prefix = "test:recovered:"
    async with healthy_and_blind(redis_url, prefix) as (observer, first, second):
        assert (await first.resolve(bsuid_only())).conversation_id == BSUID
        assert (await second.resolve(message("text_phone_and_bsuid"))).conversation_id == WA_ID
        await observer.acl_setuser("blind", commands=["+get", "+mget"])  # reads again
        later = message("text_phone_and_bsuid", id="wamid.recovered")
        assert (await second.resolve(later)).conversation_id == BSUID
        assert await observer.get(prefix + "id:" + BSUID) == BSUID.encode()
        assert await observer.get(prefix + "id:" + WA_ID) == BSUID.encode()
        assert (await first.resolve(phone_only(id="wamid.first-again"))).conversation_id == BSUID
        # A link only this process's memory holds still counts where Redis knows none of the ids.
        await observer.delete(*await observer.keys(prefix + "*"))
        assert (await second.resolve(phone_only(id="wamid.memory-only"))).conversation_id == BSUID
        assert await observer.get(prefix + "id:" + WA_ID) == BSUID.encode()


def without_parent(found: InboundMessage) -> InboundMessage:
    """The message as a business outside an enterprise portfolio gets it: no parent BSUID,
    which would otherwise link the person in Redis whatever else happens."""
    return dataclasses.replace(found, parent_user_id=None)


async def test_what_memory_learnt_from_redis_survives_redis_restarted_empty(
    redis_url: str,
) -> None:
    """Redis restarted without persistence: what an instance learnt while it could read Redis
    still counts (the first id decides, as ever), so a guess another instance made into the
    empty Redis does not move the person."""
    import redis.asyncio

    prefix = "test:restarted:"
    observer = redis.asyncio.Redis.from_url(redis_url)
    old = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    fresh = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    try:
        both = without_parent(message("text_phone_and_bsuid"))
        assert (await old.resolve(without_parent(phone_only()))).conversation_id == WA_ID
        assert (await old.resolve(both)).conversation_id == WA_ID
        await observer.delete(*await observer.keys(prefix + "*"))
        assert (await fresh.resolve(without_parent(bsuid_only()))).conversation_id == BSUID
        assert (await old.resolve(both)).conversation_id == WA_ID
        assert await observer.get(prefix + "id:" + BSUID) == WA_ID.encode()
    finally:
        await observer.close()
        await old.close()
        await fresh.close()


async def test_links_made_after_a_good_read_count_when_their_write_failed(redis_url: str) -> None:
    """Redis reads but refuses writes (maxmemory with noeviction, a read-only replica after a
    failover; here an ACL without SET): a change of number an instance read the person's
    conversation for is known to that instance, and beats a new conversation another instance
    made for the new BSUID meanwhile."""
    import redis.asyncio

    prefix = "test:mute:"
    observer = redis.asyncio.Redis.from_url(redis_url)
    await observer.acl_setuser(
        "mute",
        enabled=True,
        nopass=True,
        keys=["*"],
        commands=["+get", "+mget", "+ping", "+client"],
    )
    mute_url = redis_url.replace("redis://", "redis://mute:@")
    healthy = IdentityStore(RedisKeyValueStore(url=redis_url, prefix=prefix), clock=lambda: NOW)
    told = IdentityStore(RedisKeyValueStore(url=mute_url, prefix=prefix), clock=lambda: NOW)
    other = IdentityStore(RedisKeyValueStore(url=mute_url, prefix=prefix), clock=lambda: NOW)
    try:
        both = without_parent(message("text_phone_and_bsuid"))
        assert (await healthy.resolve(both)).conversation_id == WA_ID
        changed = without_parent(message("system_user_changed_number"))
        assert (await told.resolve(changed)).conversation_id == WA_ID  # its writes refused
        new_bsuid = without_parent(bsuid_only(from_user_id=BSUID_NEW, id="wamid.n1"))
        assert (await other.resolve(new_bsuid)).conversation_id == BSUID_NEW
        await observer.acl_setuser("mute", commands=["+set"])  # writes again
        assert (await other.resolve(new_bsuid)).conversation_id == BSUID_NEW
        later = message(
            "text_phone_and_bsuid", **{"from": WA_ID_NEW, "from_user_id": BSUID_NEW, "id": "n3"}
        )
        assert (await told.resolve(without_parent(later))).conversation_id == WA_ID
    finally:
        await observer.acl_deluser("mute")
        await observer.close()
        await healthy.close()
        await told.close()
        await other.close()


async def test_redis_unreachable_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    store = IdentityStore(RedisKeyValueStore(url="redis://127.0.0.1:1/0"))
    try:
        assert (await store.resolve(phone_only())).conversation_id == WA_ID
        assert (await store.resolve(bsuid_only())).conversation_id == WA_ID
        await store.store.set_many({"k": "v"}, 100)
        assert await store.store.get_many(["k", "missing"]) == Found(["v", None], shared=False)
    finally:
        await store.close()
    assert "Identity store unreachable" in caplog.text
