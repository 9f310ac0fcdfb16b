"""Signals (ephemeral, limited, never stored, no database round trip) and read positions
(forward only, synced across a user's sockets, receipts in private rooms only), with unread
counts that skip edit/delete entries, stop at the cap, and cost one query for 100 rooms."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.factories import Account, Factory
from tests.support import LiveServer, joined, recv, recv_type, send
from tests.test_rooms_http import read_sse


@contextmanager
def counting_statements(server: LiveServer) -> Iterator[list[str]]:
    """Every SQL statement the server's engine runs meanwhile."""
    seen: list[str] = []
    lock = threading.Lock()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with lock:
            seen.append(statement)

    engine = server.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def post(server: LiveServer, acct: Account, room: str, body: str) -> dict[str, Any]:
    with server.http() as client:
        r = client.post(f"/rooms/{room}/messages", json={"body": body}, headers=acct.headers)
    assert r.status_code == 201, r.text
    message: dict[str, Any] = r.json()
    return message


def rooms_of(server: LiveServer, acct: Account) -> dict[str, dict[str, Any]]:
    with server.http() as client:
        return {r["name"]: r for r in client.get("/rooms", headers=acct.headers).json()}


def nothing_else_queued(ws: Any) -> None:
    """Only presence is queued for this socket before the answer to a ping."""
    send(ws, type="ping")
    while (frame := recv(ws))["type"] != "pong":
        assert frame["type"] == "presence", frame


def test_a_signal_that_the_fast_encoder_refuses_is_still_delivered_whole(
    server: LiveServer, factory: Factory
) -> None:
    """Frames are encoded with orjson, which refuses an integer beyond 64 bits and a lone
    surrogate: the json fallback writes them, so such a signal still arrives, unchanged."""
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    data = {"big": 2**70, "text": "naïve ☃", "nested": [1.5, None, True]}
    with joined(server, alice) as a, joined(server, bob) as b:
        send(a, type="signal", room="general", data=data)
        assert recv_type(b, "signal")["data"] == data
        send(a, type="signal", room="general", data={"small": 1, "text": "naïve ☃"})
        assert recv_type(b, "signal")["data"] == {"small": 1, "text": "naïve ☃"}


def test_signals_reach_the_others_and_are_never_stored(
    server: LiveServer, factory: Factory
) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    with joined(server, alice) as a1, joined(server, alice) as a2, joined(server, bob) as b:
        with counting_statements(server) as statements:
            send(a1, type="signal", room="general", data={"typing": True})
            expected = {"type": "signal", "room": "general", "user": alice.username}
            assert recv_type(b, "signal") == {**expected, "data": {"typing": True}}
            assert recv_type(a2, "signal") == {**expected, "data": {"typing": True}}
        assert statements == []  # no database round trip
        nothing_else_queued(a1)  # the sender gets nothing back
        send(b, type="signal", room="general", data="x" * 2000, ref="big")
        error = recv_type(b, "error")
        assert error["code"] == "body_invalid" and error["ref"] == "big"
        send(b, type="signal", room="lobby", data=1)
        assert recv_type(b, "error")["code"] == "not_joined"
        for i in range(60):  # the bucket holds 40: some are refused, with retry_after
            send(b, type="signal", room="general", data=i)
        limited = recv_type(b, "error")
        assert limited["code"] == "rate_limited" and limited["retry_after"] > 0
    with server.http() as client:
        history = client.get("/rooms/general/messages", headers=bob.headers).json()
    assert history["messages"] == []
    post(server, alice, "general", "after the signals")
    with joined(server, bob, since=0) as replay:
        assert recv_type(replay, "message")["body"] == "after the signals"
        nothing_else_queued(replay)  # and no signal was replayed
    with (
        server.http() as client,
        client.stream(
            "GET", "/rooms/general/events", headers={**bob.headers, "Last-Event-ID": "0"}
        ) as sse,
        joined(server, alice) as a,
    ):
        send(a, type="signal", room="general", data={"typing": True})
        post(server, alice, "general", "sse")
        events = read_sse(sse, 2)
    assert [json.loads(e["data"])["body"] for e in events] == ["after the signals", "sse"]


def test_read_positions_move_forward_and_sync_across_sockets(
    server: LiveServer, factory: Factory
) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    for i in range(5):
        post(server, bob, "general", f"m{i}")
    assert rooms_of(server, bob)["general"]["last_read"] == 5  # sending moved bob's
    state = rooms_of(server, alice)["general"]
    assert (state["last_seq"], state["last_read"], state["unread"]) == (5, 0, 5)
    with joined(server, alice) as a1, joined(server, alice) as a2, joined(server, bob) as b:
        send(a1, type="read", room="general", seq=3)
        read = {"type": "read", "room": "general", "user": alice.username, "seq": 3}
        assert recv_type(a1, "read") == read and recv_type(a2, "read") == read
        send(a2, type="read", room="general", seq=2)  # backwards: nothing moves
        assert recv_type(a2, "read") == read
        with server.http() as client:
            r = client.put("/rooms/general/read", json={"seq": 99}, headers=alice.headers)
        assert r.json() == {"room": "general", "last_read": 5}  # at most the last seq
        assert recv_type(a1, "read")["seq"] == 5 and recv_type(a2, "read")["seq"] == 5
        nothing_else_queued(b)  # a public room sends no receipts to others
    state = rooms_of(server, alice)["general"]
    assert (state["last_read"], state["unread"]) == (5, 0)
    with server.ws(f"/ws?token={alice.access_token}") as ws:
        recv(ws)
        send(ws, type="join", room="general")
        frame = recv_type(ws, "joined")
        assert (frame["last_read"], frame["unread"]) == (5, 0)


def test_receipts_in_private_rooms(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    with server.http() as client:
        name = client.post("/dms", json={"username": bob.username}, headers=alice.headers).json()[
            "name"
        ]
    post(server, alice, name, "hi bob")
    with joined(server, alice, name) as a, joined(server, bob, name) as b:
        send(b, type="read", room=name, seq=1)
        receipt = {"type": "read", "room": name, "user": bob.username, "seq": 1}
        assert recv_type(a, "read") == receipt
        assert recv_type(b, "read") == receipt
    with server.http() as client:
        dms = client.get("/dms", headers=bob.headers).json()
    assert (dms[0]["last_read"], dms[0]["unread"]) == (1, 0)


def test_unread_skips_edits_and_stops_at_the_cap(make_server: Any, factory: Factory) -> None:
    live = make_server(limits={"unread_cap": 3})
    alice = factory.account(server=live)
    bob = factory.account(alice.tenant, server=live)
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=alice.headers)
    post(live, alice, "general", "one")
    post(live, alice, "general", "two")
    with live.http() as client:
        assert (
            client.patch(
                "/rooms/general/messages/1", json={"body": "uno"}, headers=alice.headers
            ).status_code
            == 200
        )
        assert client.delete("/rooms/general/messages/2", headers=alice.headers).status_code == 200
    state = rooms_of(live, bob)["general"]
    assert (state["last_seq"], state["unread"]) == (4, 2)  # 2 messages, 1 edit, 1 delete
    for i in range(3):
        post(live, alice, "general", f"more {i}")
    assert rooms_of(live, bob)["general"]["unread"] == 3  # the cap


def test_listing_100_rooms_with_unread_counts_is_one_query(
    server: LiveServer, factory: Factory
) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    with server.http() as client:
        for i in range(100):
            client.post("/rooms", json={"name": f"room-{i:03}"}, headers=alice.headers)
            client.post(f"/rooms/room-{i:03}/messages", json={"body": "x"}, headers=alice.headers)
        with counting_statements(server) as statements:
            listed = client.get("/rooms", headers=bob.headers).json()
    assert len(listed) == 100 and all(r["unread"] == 1 for r in listed)
    reads = [s for s in statements if "read_position" in s or "FROM room" in s]
    assert len(reads) == 1, statements
