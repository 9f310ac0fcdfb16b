"""Rooms over the WebSocket: send/ack/fan-out, idempotency, resume without gap or
duplicate, presence, every error code, frame size, slow consumers."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

from websockets.sync.client import ClientConnection

from tests.factories import Factory
from tests.support import LiveServer, close_of, joined, recv, recv_type, send


def presence_of(ws: ClientConnection, user: str) -> dict[str, Any]:
    while True:
        frame = recv_type(ws, "presence")
        if frame["user"] == user:
            return frame


def test_send_ack_fanout_with_consecutive_seqs(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    with joined(server, alice) as a, joined(server, bob) as b:
        for i in range(5):
            send(a, type="send", room="general", body=f"hello {i}", client_msg_id=f"c{i}")
        acks: list[dict[str, Any]] = []
        a_messages: list[dict[str, Any]] = []
        while len(acks) < 5 or len(a_messages) < 5:
            frame = recv(a)
            if frame["type"] == "ack":
                acks.append(frame)
            elif frame["type"] == "message":
                a_messages.append(frame)
        assert [f["seq"] for f in acks] == [1, 2, 3, 4, 5]
        assert [f["client_msg_id"] for f in acks] == [f"c{i}" for i in range(5)]
        b_messages = [recv_type(b, "message") for _ in range(5)]
    for messages in (a_messages, b_messages):
        assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
        assert [m["body"] for m in messages] == [f"hello {i}" for i in range(5)]
        assert all(m["sender"] == alice.username and m["kind"] == "user" for m in messages)
        assert all(m["room"] == "general" and m["ts"].endswith("Z") for m in messages)


def test_duplicate_client_msg_id_is_stored_once(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    factory.room(alice)
    with joined(server, alice) as ws:
        send(ws, type="send", room="general", body="once", client_msg_id="dup-1")
        first = recv_type(ws, "ack")
        send(ws, type="send", room="general", body="once again?", client_msg_id="dup-1")
        second = recv_type(ws, "ack")
        assert (
            first
            == second
            == {"type": "ack", "room": "general", "seq": 1, "client_msg_id": "dup-1"}
        )
    with server.http() as client:
        r = client.post(
            "/rooms/general/messages",
            headers=alice.headers,
            json={"body": "via http", "client_msg_id": "dup-1"},
        )
        assert r.status_code == 200 and r.json()["seq"] == 1 and r.json()["body"] == "once"
        history = client.get("/rooms/general/messages", headers=alice.headers).json()
    assert [m["seq"] for m in history["messages"]] == [1]


def test_resume_with_since_while_another_client_sends(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    total = 120
    with server.http() as client:
        for i in range(20):
            client.post("/rooms/general/messages", headers=alice.headers, json={"body": f"m{i}"})

    def keep_sending() -> None:
        with joined(server, alice) as ws:
            for i in range(20, total):
                send(ws, type="send", room="general", body=f"m{i}")
                recv_type(ws, "ack")

    sender = threading.Thread(target=keep_sending)
    sender.start()
    time.sleep(0.05)
    seqs: list[int] = []
    with joined(server, bob, since=7) as ws:
        while len(seqs) < total - 7:
            frame = recv(ws)
            if frame["type"] == "message":
                seqs.append(frame["seq"])
    sender.join(30)
    assert seqs == list(range(8, total + 1))


def test_join_reports_last_seq_and_online(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    with server.http() as client:
        for i in range(3):
            client.post("/rooms/general/messages", headers=alice.headers, json={"body": str(i)})
    with joined(server, alice) as a:
        ws = server.ws(f"/ws?token={bob.access_token}", legacy=True)
        recv(ws)
        send(ws, type="join", room="general")
        frame = recv(ws)
        assert frame == {
            "type": "joined",
            "room": "general",
            "seq": 3,
            "online": 2,
            "last_read": 0,
            "unread": 3,
        }
        presence = presence_of(a, bob.username)
        assert presence == {
            "type": "presence",
            "room": "general",
            "user": bob.username,
            "event": "join",
            "online": 2,
        }
        with server.http() as client:
            users = client.get("/rooms/general/presence", headers=alice.headers).json()
        assert users == {
            "room": "general",
            "users": sorted(
                [
                    {"username": alice.username, "connections": 1},
                    {"username": bob.username, "connections": 1},
                ],
                key=lambda u: str(u["username"]),
            ),
        }
        send(ws, type="leave", room="general")
        assert recv_type(ws, "left") == {"type": "left", "room": "general"}
        leave = presence_of(a, bob.username)
        assert leave["event"] == "leave" and leave["online"] == 1
        send(ws, type="join", room="general")
        recv_type(ws, "joined")
        ws.close()
        assert presence_of(a, bob.username)["event"] == "join"
        assert presence_of(a, bob.username)["event"] == "leave"  # disconnect counts as leave


def test_error_codes_keep_socket_open(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    other_tenant = factory.account()
    factory.room(alice)
    factory.room(alice, "secret", private=True)
    factory.room(other_tenant, "theirs")
    bob = factory.account(alice.tenant)
    with joined(server, bob) as ws:
        cases: list[tuple[Any, str]] = [
            ("{nope", "invalid_frame"),
            ("[1, 2]", "invalid_frame"),
            (json.dumps({"room": "general"}), "invalid_frame"),
            (json.dumps({"type": "dance"}), "unknown_type"),
            (json.dumps({"type": "join"}), "invalid_frame"),
            (json.dumps({"type": "join", "room": "general", "since": -1}), "invalid_frame"),
            (json.dumps({"type": "join", "room": "missing"}), "room_not_found"),
            (json.dumps({"type": "join", "room": "theirs"}), "room_not_found"),
            (json.dumps({"type": "join", "room": "secret"}), "forbidden"),
            (json.dumps({"type": "send", "room": "elsewhere", "body": "x"}), "not_joined"),
            (json.dumps({"type": "leave", "room": "elsewhere"}), "not_joined"),
            (json.dumps({"type": "send", "room": "general", "body": ""}), "body_invalid"),
            (json.dumps({"type": "send", "room": "general", "body": "   "}), "body_invalid"),
            (json.dumps({"type": "send", "room": "general", "body": 42}), "body_invalid"),
            (json.dumps({"type": "send", "room": "general", "body": "x" * 4001}), "body_invalid"),
            (b"\x00\x01binary", "invalid_frame"),
        ]
        for raw, code in cases:
            ws.send(raw)
            frame = recv_type(ws, "error")
            assert frame["code"] == code, (raw, frame)
            assert frame["detail"]
        send(ws, type="join", room="missing", ref="r-1")
        assert recv_type(ws, "error")["ref"] == "r-1"
        send(ws, type="ping")
        assert recv(ws) == {"type": "pong"}


def test_rate_limited_with_retry_after(make_server: Any, factory: Factory) -> None:
    live = make_server(limits={"messages_per_second": 1.0, "message_burst": 3})
    acct = factory.account(server=live)
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=acct.headers)
    with joined(live, acct) as ws:
        for i in range(4):
            send(ws, type="send", room="general", body=str(i))
        frames = [recv(ws) for _ in range(8)]  # own presence, 3 acks, 3 messages, 1 error
        errors = [f for f in frames if f["type"] == "error"]
        assert len(errors) == 1 and errors[0]["code"] == "rate_limited"
        assert 0 < errors[0]["retry_after"] <= 1.0
        assert sum(f["type"] == "ack" for f in frames) == 3
    with live.http() as client:
        r = client.post("/rooms/general/messages", json={"body": "x"}, headers=acct.headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_frame_too_large_closes_1009(make_server: Any, factory: Factory) -> None:
    live = make_server(ws={"max_message_bytes": 1024})
    acct = factory.account(server=live)
    with live.ws(f"/ws?token={acct.access_token}") as ws:
        recv(ws)
        send(ws, type="ping", padding="x" * 2048)
        assert close_of(ws)[0] == 1009


def test_rooms_per_socket_limit(make_server: Any, factory: Factory) -> None:
    live = make_server(limits={"rooms_per_socket": 2})
    acct = factory.account(server=live)
    with live.http() as client:
        for name in ("a", "b", "c"):
            client.post("/rooms", json={"name": name}, headers=acct.headers)
    with live.ws(f"/ws?token={acct.access_token}") as ws:
        recv(ws)
        for name in ("a", "b"):
            send(ws, type="join", room=name)
            recv_type(ws, "joined")
        send(ws, type="join", room="c")
        assert recv_type(ws, "error")["code"] == "limit_exceeded"


def test_auto_join_path_and_auto_create(make_server: Any, factory: Factory) -> None:
    live = make_server(rooms={"auto_create": True})
    acct = factory.account(server=live)
    with live.ws(f"/ws/rooms/lobby?token={acct.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        assert recv_type(ws, "joined") == {
            "type": "joined",
            "room": "lobby",
            "seq": 0,
            "online": 1,
            "last_read": 0,
            "unread": 0,
        }
    with live.ws(f"/ws/rooms/Bad%20Name?token={acct.access_token}") as ws:
        recv(ws)
        assert recv_type(ws, "error")["code"] == "room_not_found"


def test_slow_consumer_closed_1013_fast_one_gets_everything(
    make_server: Any, factory: Factory
) -> None:
    live = make_server(ws={"send_queue_size": 8}, sndbuf=32768)
    tenant = factory.tenant()
    for name in ("alice", "slow", "fast"):
        factory.user(tenant, name)
    alice, slow, fast = (factory.login(tenant, n, server=live) for n in ("alice", "slow", "fast"))
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=alice.headers)
    body = "x" * 3900
    total = 300
    # A stalled client: a tiny kernel receive buffer and no client-side buffering.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", live.port))
    slow_conn = live.ws(f"/ws?token={slow.access_token}", sock=stalled, max_queue=1)
    with slow_conn as slow_ws, joined(live, fast) as fast_ws:
        assert recv(slow_ws)["type"] == "ready"
        send(slow_ws, type="join", room="general")
        assert recv(slow_ws)["type"] == "joined"
        received: list[int] = []

        def read_fast() -> None:
            while len(received) < total:
                frame = recv(fast_ws, timeout=20)
                if frame["type"] == "message":
                    received.append(frame["seq"])

        reader = threading.Thread(target=read_fast)
        reader.start()
        with joined(live, alice) as sender:  # a well-behaved sender reads as it sends
            for i in range(total):
                send(sender, type="send", room="general", body=body, client_msg_id=str(i))
                while recv(sender, timeout=20)["type"] != "ack":
                    pass
        reader.join(30)
        assert received == list(range(1, total + 1))
        assert close_of(slow_ws, timeout=20) == (1013, "slow_consumer")
    with live.http() as client:
        assert "switchboard_slow_consumers_total" in client.get("/metrics").text


def test_idle_timeout_closes_1000(make_server: Any, factory: Factory) -> None:
    live = make_server(ws={"idle_timeout": 0.5})
    acct = factory.account(server=live)
    with live.ws(f"/ws?token={acct.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        for _ in range(3):  # frames keep it open...
            time.sleep(0.3)
            send(ws, type="ping")
            assert recv_type(ws, "pong") == {"type": "pong"}
        started = time.monotonic()  # ...silence closes it
        assert close_of(ws) == (1000, "idle")
        assert time.monotonic() - started < 2
