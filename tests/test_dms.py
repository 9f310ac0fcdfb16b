"""Direct rooms: one per pair whichever side asks (even at the same instant), a name that
says nothing, exactly two members, and invisible to everyone else by every path."""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx

from tests.factories import Account, Factory
from tests.support import LiveServer, recv, recv_type, send

DM_NAME = re.compile(r"^dm-[0-9a-f]{16}$")


def open_dm(server: LiveServer, acct: Account, username: str) -> httpx.Response:
    with server.http() as client:
        return client.post("/dms", json={"username": username}, headers=acct.headers)


def test_one_room_per_pair_whichever_side_asks(server: LiveServer, factory: Factory) -> None:
    alice = factory.account(username="alice")
    bob = factory.account(alice.tenant, "bob")
    first = open_dm(server, alice, "bob")
    assert first.status_code == 201, first.text
    room = first.json()
    assert room["private"] is True and room["dm"] == {"with": "bob"}
    assert DM_NAME.match(room["name"]) and "alice" not in room["name"]
    again = open_dm(server, bob, "alice")
    assert again.status_code == 200
    assert again.json()["name"] == room["name"] and again.json()["dm"] == {"with": "alice"}
    with server.http() as client:
        listed = client.get("/dms", headers=bob.headers).json()
        in_rooms = client.get("/rooms", headers=alice.headers).json()
    assert listed == [
        {"name": room["name"], "with": "alice", "last_seq": 0, "last_read": 0, "unread": 0}
    ]
    assert [r["dm"] for r in in_rooms if r["name"] == room["name"]] == [{"with": "bob"}]


def test_simultaneous_requests_make_one_room(server: LiveServer, factory: Factory) -> None:
    alice = factory.account(username="alice")
    bob = factory.account(alice.tenant, "bob")
    for round_ in range(3):  # a few tries at the race, each with a fresh pair
        carol = factory.account(alice.tenant, f"carol{round_}")
        barrier = threading.Barrier(4)
        answers: list[httpx.Response] = []

        def ask(
            acct: Account,
            other: str,
            barrier: threading.Barrier = barrier,
            answers: list[httpx.Response] = answers,
        ) -> None:
            barrier.wait()
            answers.append(open_dm(server, acct, other))

        threads = [
            threading.Thread(target=ask, args=(a, o))
            for a, o in ((alice, carol.username), (carol, "alice")) * 2
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in answers) == [200, 200, 200, 201]
        assert len({r.json()["name"] for r in answers}) == 1
    with server.http() as client:
        assert len(client.get("/dms", headers=alice.headers).json()) == 3
        assert client.get("/dms", headers=bob.headers).json() == []


def test_refused_partners(server: LiveServer, factory: Factory) -> None:
    alice = factory.account(username="alice", role="admin")
    factory.account(alice.tenant, "gone")
    elsewhere = factory.account(username="stranger")
    with server.http() as client:
        assert client.delete("/admin/users/gone", headers=alice.headers).status_code == 204
    for username in ("alice", "nobody", "gone", elsewhere.username):
        r = open_dm(server, alice, username)
        assert r.status_code == 404, username
        assert r.json()["error"] == "user_not_found"


def test_a_third_user_cannot_reach_a_direct_room(server: LiveServer, factory: Factory) -> None:
    alice = factory.account(username="alice")
    factory.account(alice.tenant, "bob")
    carol = factory.account(alice.tenant, "carol")
    admin = factory.account(alice.tenant, "root", role="admin")
    name = open_dm(server, alice, "bob").json()["name"]
    with server.http() as client:
        client.post(f"/rooms/{name}/messages", json={"body": "secret"}, headers=alice.headers)
        for intruder in (carol, admin):
            h = intruder.headers
            assert all(r["name"] != name for r in client.get("/rooms", headers=h).json())
            assert client.get("/dms", headers=h).json() == []
            for path in ("", "/messages", "/presence", "/events"):
                r = client.get(f"/rooms/{name}{path}", headers=h)
                assert r.status_code == 403 and r.json()["error"] == "forbidden", path
            posted = client.post(f"/rooms/{name}/messages", json={"body": "x"}, headers=h)
            assert posted.status_code == 403
            assert client.put(f"/rooms/{name}/read", json={"seq": 1}, headers=h).status_code == 403
            added = client.post(
                f"/rooms/{name}/members", json={"username": intruder.username}, headers=h
            )
            assert added.status_code == 403
        # not even a member can add a third person
        added = client.post(
            f"/rooms/{name}/members", json={"username": "carol"}, headers=alice.headers
        )
        assert added.status_code == 403
        messages = client.get(f"/rooms/{name}/messages", headers=alice.headers).json()["messages"]
        assert [m["body"] for m in messages] == ["secret"]
    for intruder in (carol, admin):
        with server.ws(f"/ws?token={intruder.access_token}") as ws:
            recv(ws)
            send(ws, type="join", room=name, ref="j")
            error: dict[str, Any] = recv_type(ws, "error")
            assert error["code"] == "forbidden" and error["ref"] == "j"
            send(ws, type="read", room=name, seq=1, ref="r")
            assert recv_type(ws, "error")["code"] == "forbidden"
