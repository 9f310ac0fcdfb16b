"""In-process unit tests for the pieces that are otherwise only tested end to end: the
room fan-out's sequencing and gap repair, the send queue, the token bucket, the token
codec, the protocol's frame decoding and close table, and the generated settings file."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import jwt
import pytest

from api import events
from api.broker.memory import MemoryBroker
from api.fanout import Frames, RoomFanout
from api.hub import Hub
from api.protocol import (
    ClientAction,
    Close,
    CloseCode,
    FrameRejected,
    client_action,
    decode_client_frame,
)
from api.ratelimit import TokenBuckets
from api.redact import redact
from api.security import TokenCodec, TokenError
from api.send_queue import SendQueue, WriteRound
from api.settings import AuthSettings
from api.settings_toml import render

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """A subscriber that records what it is given."""

    counts_for_presence = False

    def __init__(self, user_id: int = 1, ref: str = "r1") -> None:
        self.tenant_id, self.user_id, self.username = 1, user_id, "u"
        self.ref = ref
        self.session_id = uuid.uuid4()
        self.got: list[tuple[int, str]] = []
        self.closed: Close | None = None

    def push(self, seq: int, text: str) -> None:
        self.got.append((seq, text))

    def offer(self, text: str) -> None:
        self.got.append((-1, text))

    async def push_wait(self, seq: int, text: str) -> None:
        self.got.append((seq, text))

    def close_soon(self, close: Close) -> None:
        self.closed = close

    def removed_from(self, room: str) -> None:
        pass


def _fanout(member: Recorder, delivered: int = 0) -> RoomFanout:
    fan = RoomFanout(1, 1, "general", "t:1:room:1", early=None)
    fan.members[member] = None
    fan.delivered = delivered
    return fan


def test_fanout_delivers_in_seq_order_and_drops_duplicates() -> None:
    member = Recorder()
    fan = _fanout(member)
    assert fan.accept(events.message_event(1, "one")) is False
    assert fan.accept(events.message_event(1, "one again")) is False  # duplicate: dropped
    assert fan.accept(events.message_event(3, "three")) is True  # gap: held, repair needed
    assert fan.missing() == (1, 2)
    fan.gap_task = cast(Any, "a repair is running")  # as the hub records it
    assert fan.accept(events.message_event(4, "four")) is False  # held too, no second repair
    assert member.got == [(1, "one")]
    fan.accept(events.message_event(2, "two"))  # the gap filled: everything held follows
    assert member.got == [(1, "one"), (2, "two"), (3, "three"), (4, "four")]
    assert fan.delivered == 4 and fan.missing() is None


def test_fanout_buffers_a_joining_member_and_passes_non_messages() -> None:
    live, joining = Recorder(), Recorder()
    fan = _fanout(live)
    fan.members[joining] = []  # replaying history
    fan.accept(events.message_event(1, "one"))
    fan.accept(events.simple_event(events.PRESENCE, "presence"))
    assert live.got == [(1, "one"), (0, "presence")]
    assert joining.got == [] and fan.members[joining] == [(1, "one"), (0, "presence")]


def test_fanout_routes_signals_and_read_positions() -> None:
    sender, other_socket, bob, joining = (
        Recorder(1, "a1"),
        Recorder(1, "a2"),
        Recorder(2, "b"),
        Recorder(2, "b2"),
    )
    fan = _fanout(sender)
    fan.members.update({other_socket: None, bob: None, joining: []})
    fan.accept(events.signal_event("a1", "typing"))  # everyone live but the sending socket
    assert (sender.got, other_socket.got, bob.got) == ([], [(-1, "typing")], [(-1, "typing")])
    assert fan.members[joining] == []  # a member still replaying is behind: dropped
    fan.accept(events.read_event(1, False, "alice read"))  # public room: alice's sockets only
    assert sender.got == [(0, "alice read")] and bob.got == [(-1, "typing")]
    fan.accept(events.read_event(2, True, "bob read"))  # private room: every member
    assert all(m.got[-1] == (0, "bob read") for m in (sender, other_socket, bob))
    assert fan.members[joining] == [(0, "bob read")]


class History:
    """A HistoryLoader over a list: the room's stored messages, and the ranges read."""

    def __init__(self, stored: dict[int, str]) -> None:
        self.stored = stored
        self.reads: list[tuple[int, int]] = []

    async def last_seq(self, tenant_id: int, room_id: int) -> int:
        return max(self.stored, default=0)

    async def frames_between(
        self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> Frames:
        self.reads.append((after, upto))
        return [(s, t) for s, t in sorted(self.stored.items()) if after < s <= upto][:limit]


def test_hub_repairs_a_gap_from_history() -> None:
    async def main() -> list[tuple[int, str]]:
        broker = MemoryBroker()
        history = History({})
        hub = Hub(broker, history, gap_wait=0.01)
        await hub.start()
        member = Recorder()
        await hub.register(member)
        await hub.join(member, 1, 1, "general", None, lambda seq, online: "joined")
        history.stored.update({1: "one", 2: "two", 3: "three"})
        channel = "t:1:room:1"
        await broker.publish(channel, events.message_event(1, "one"))
        await broker.publish(channel, events.message_event(3, "three"))  # 2 never published
        for _ in range(200):
            if len(member.got) == 4:
                break
            await asyncio.sleep(0.01)
        return member.got

    assert asyncio.run(main()) == [(0, "joined"), (1, "one"), (2, "two"), (3, "three")]


def test_a_join_whose_replay_fails_closes_1013_instead_of_going_live_with_a_gap() -> None:
    class FailingHistory(History):
        async def frames_between(
            self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
        ) -> Frames:
            raise TimeoutError("the pool had no connection in time")

    async def main() -> tuple[Recorder, Recorder, Hub]:
        broker = MemoryBroker()
        hub = Hub(broker, FailingHistory({1: "one", 2: "two"}), gap_wait=0.01)
        await hub.start()
        resuming, live = Recorder(1, "a"), Recorder(2, "b")
        for sub in (resuming, live):
            await hub.register(sub)
        await hub.join(live, 1, 1, "general", None, lambda seq, online: f"joined {seq}")
        with pytest.raises(TimeoutError):  # the frame handler answers it with an error
            await hub.join(resuming, 1, 1, "general", 0, lambda seq, online: f"joined {seq}")
        await broker.publish("t:1:room:1", events.message_event(3, "three"))
        await asyncio.sleep(0.05)
        return resuming, live, hub

    resuming, live, hub = asyncio.run(main())
    assert resuming.closed is Close.OVERLOADED  # it reconnects and resumes with since=0
    assert resuming.got == [(0, "joined 2")]  # and 3 never reached it past the hole (1, 2]
    assert resuming not in hub.joined and live.got == [(0, "joined 2"), (3, "three")]


def test_a_rejoin_replays_recent_messages_from_memory_until_an_edit_makes_them_stale() -> None:
    def message(seq: int, kind: str) -> str:
        return f'{{"type":"message","seq":{seq},"kind":"{kind}"}}'

    async def main() -> tuple[list[list[tuple[int, str]]], int]:
        broker = MemoryBroker()
        history = History({})
        hub = Hub(broker, history, recent_per_room=3)
        await hub.start()
        keeper = Recorder(1, "keeper")  # keeps the room live in this process
        await hub.register(keeper)
        await hub.join(keeper, 1, 1, "general", None, lambda seq, online: "joined")
        for seq in range(1, 5):
            history.stored[seq] = message(seq, "user")
            await broker.publish("t:1:room:1", events.message_event(seq, message(seq, "user")))
        got = []
        for since in (2, 1, 0):  # 2, 3 and 4 are in memory; 1 only in Postgres
            sub = Recorder(2, f"s{since}")
            await hub.join(sub, 1, 1, "general", since, lambda seq, online: "joined")
            got.append(list(sub.got))
        reads_before_edit = len(history.reads)
        assert reads_before_edit == 1  # the join from 0
        history.stored[5] = message(5, "edit")
        await broker.publish("t:1:room:1", events.message_event(5, message(5, "edit")))
        late = Recorder(2, "late")
        await hub.join(late, 1, 1, "general", 3, lambda seq, online: "joined")
        got.append(late.got)
        return got, len(history.reads) - reads_before_edit

    got, reads_after_edit = asyncio.run(main())
    stored = {seq: message(seq, "user") for seq in range(1, 5)}
    assert got[0] == [(0, "joined"), (3, stored[3]), (4, stored[4])]
    assert got[1] == [(0, "joined"), (2, stored[2]), (3, stored[3]), (4, stored[4])]
    assert got[2] == [(0, "joined"), *((s, stored[s]) for s in range(1, 5))]
    assert got[3] == [(0, "joined"), (4, stored[4]), (5, message(5, "edit"))]
    assert reads_after_edit == 1  # 4 was cached, but the edit made the cache stale


def test_a_message_arriving_while_a_join_is_set_up_is_replayed_once() -> None:
    class BusyBroker(MemoryBroker):
        """Message 5 arrives while the joiner's presence is being counted."""

        hub: Hub | None = None

        async def presence(self, key: str) -> dict[str, int]:
            if self.hub is not None:
                five = events.message_event(5, '{"kind":"user","t":"five"}')
                self.hub.on_broker_message("t:1:room:1", five)
                self.hub = None
            return await super().presence(key)

    async def main() -> list[tuple[int, str]]:
        broker = BusyBroker()
        hub = Hub(broker, History({}), recent_per_room=10)
        await hub.start()
        keeper, joiner = Recorder(1, "keeper"), Recorder(2, "joiner")
        await hub.join(keeper, 1, 1, "general", None, lambda seq, online: "joined")
        for seq, text in ((1, "one"), (2, "two"), (3, "three"), (4, "four")):
            frame = f'{{"kind":"user","t":"{text}"}}'
            await broker.publish("t:1:room:1", events.message_event(seq, frame))
        broker.hub = hub
        await hub.join(joiner, 1, 1, "general", 2, lambda seq, online: f"joined {seq}")
        return joiner.got

    got = asyncio.run(main())
    assert [seq for seq, _ in got] == [0, 3, 4, 5] and got[0][1] == "joined 4"


def test_after_a_restart_the_first_rejoin_reads_postgres_and_the_next_ones_memory() -> None:
    history = History({1: "a", 2: "b", 3: "c"})

    async def main() -> list[list[tuple[int, str]]]:
        hub = Hub(MemoryBroker(), history, recent_per_room=5)
        await hub.start()
        got = []
        for since in (1, 0, 2, 1):  # the room's messages were all stored before this start
            sub = Recorder(2, f"s{since}")
            await hub.join(sub, 1, 1, "general", since, lambda seq, online: "joined")
            got.append(sub.got)
        return got

    got = asyncio.run(main())
    assert [[seq for seq, _ in frames] for frames in got] == [
        [0, 2, 3],
        [0, 1, 2, 3],
        [0, 3],
        [0, 2, 3],
    ]
    assert history.reads == [(1, 3), (0, 3)]  # the second extended the cache back to 1


def test_send_queue_is_bounded_and_ordered() -> None:
    async def main() -> None:
        queue = SendQueue(2)
        assert queue.put_nowait("a") and queue.put_nowait("b")
        assert not queue.put_nowait("c")  # full: the caller closes the socket (1013)
        waiting = asyncio.ensure_future(queue.put("c"))  # a replay waits for room instead
        await asyncio.sleep(0)
        assert not waiting.done()
        assert queue.popleft() == "a"
        await asyncio.wait_for(waiting, 1)
        written: list[str] = []

        def refuse(items: deque[str], encode: Callable[[str], bytes]) -> bool:
            return False  # a paused socket: the queue is left alone

        def write(items: deque[str], encode: Callable[[str], bytes]) -> bool:
            written.extend(items)
            items.clear()
            return True

        assert not queue.write_all(refuse, str.encode) and len(queue) == 2
        assert queue.write_all(write, str.encode) and written == ["b", "c"] and not queue

    asyncio.run(main())


def test_a_write_round_writes_each_socket_once_and_serializes_each_frame_once() -> None:
    serialized: list[str] = []

    def frame(text: str) -> bytes:
        serialized.append(text)
        return text.encode()

    class Sock:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.queue = ["one", "two"]

        def flush(self, encode: Callable[[str], bytes]) -> None:
            self.writes.append(b"".join(encode(t) for t in self.queue))

    async def main() -> list[Sock]:
        write_round = WriteRound(frame)
        socks = [Sock() for _ in range(3)]
        for sock in socks:
            write_round.add(sock)
        assert all(not sock.writes for sock in socks)  # nothing until the turn ends
        await asyncio.sleep(0)
        return socks

    socks = asyncio.run(main())
    assert [sock.writes for sock in socks] == [[b"onetwo"]] * 3
    assert serialized == ["one", "two"]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", now=100.0) == pytest.approx(0.5)  # one token every 0.5 s
    assert buckets.take("k", now=100.5) == 0.0
    assert buckets.take("other", now=100.5) == 0.0  # keys are independent


def _codec(**overrides: Any) -> TokenCodec:
    return TokenCodec(AuthSettings(jwt_secret="k" * 40, **overrides))


def test_token_codec_round_trip_and_rejections() -> None:
    codec = _codec()
    sid = uuid.uuid4()
    token, exp = codec.issue(user_id=7, tenant_id=3, role="member", session_id=sid)
    claims = codec.decode(token)
    assert (claims.user_id, claims.tenant_id, claims.session_id, claims.expires_at) == (
        7,
        3,
        sid,
        exp,
    )
    old, _ = codec.issue(user_id=7, tenant_id=3, role="member", session_id=sid, now=1000)
    with pytest.raises(TokenError) as expired:
        codec.decode(old)
    assert expired.value.reason == "expired_token"
    payload = jwt.decode(token, options={"verify_signature": False})
    forged = [
        jwt.encode(payload, "another secret that is long enough!!", algorithm="HS256"),
        jwt.encode(payload, "", algorithm="none"),
        jwt.encode({**payload, "aud": "elsewhere"}, "k" * 40, algorithm="HS256"),
        jwt.encode({**payload, "typ": "refresh"}, "k" * 40, algorithm="HS256"),
        _codec(issuer="someone-else").issue(user_id=7, tenant_id=3, role="member", session_id=sid)[
            0
        ],
    ]
    for bad in forged:
        with pytest.raises(TokenError) as rejected:
            codec.decode(bad)
        assert rejected.value.reason == "invalid_token"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", "invalid_frame"),
        ('{"room": "x"}', "invalid_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "join"}', "invalid_frame"),
        ('{"type": "join", "room": "x", "since": -1}', "invalid_frame"),
    ],
)
def test_bad_client_frames_are_named(text: str, code: str) -> None:
    with pytest.raises(FrameRejected) as rejected:
        decode_client_frame(text)
    assert rejected.value.code == code and rejected.value.detail


def test_close_table() -> None:
    pairs = [(c.code, c.reason) for c in Close]
    assert len(pairs) == len(set(pairs))
    assert all(c.meaning and c.reason for c in Close)
    assert client_action(1008, "expired_token") is ClientAction.REFRESH
    assert client_action(1008, "revoked") is ClientAction.STOP
    assert client_action(1008, "anything else") is ClientAction.STOP
    assert client_action(1013, "slow_consumer") is ClientAction.RECONNECT
    assert client_action(CloseCode.RESTART, "") is ClientAction.RECONNECT
    assert client_action(1006, "") is ClientAction.RECONNECT  # the network, not the server
    assert client_action(1000, "") is ClientAction.STOP


def test_settings_toml_is_generated_from_the_models() -> None:
    """Defaults live in api/settings.py; `python -m api.settings_toml > settings.toml`."""
    assert (ROOT / "settings.toml").read_text() == render()


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ("GET /ws?token=abc.def HTTP/1.1", "GET /ws?token=[redacted] HTTP/1.1"),
        ("/ws?%74oken=abc.def", "/ws?%74oken=[redacted]"),
        ("/ws?x=1&TOKEN=a;ticket=b&keep=2", "/ws?x=1&TOKEN=[redacted];ticket=[redacted]&keep=2"),
        ("/ws?access%5Ftoken=a", "/ws?access%5Ftoken=[redacted]"),
        ("/ws?tok%65n=a&tokens=b", "/ws?tok%65n=[redacted]&tokens=b"),
        ("no query here", "no query here"),
    ],
)
def test_log_redaction_decodes_parameter_names(logged: str, expected: str) -> None:
    assert redact(logged) == expected
