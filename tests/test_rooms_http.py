"""Rooms over HTTP: create/list/get/members, history keyset paging, publish, SSE."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.factories import Account, Factory
from tests.support import LiveServer


def post_many(server: LiveServer, acct: Account, n: int, room: str = "general") -> None:
    with server.http() as client:
        for i in range(n):
            r = client.post(
                f"/rooms/{room}/messages", json={"body": f"m{i + 1}"}, headers=acct.headers
            )
            assert r.status_code == 201


def test_create_list_get(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    with server.http() as client:
        r = client.post("/rooms", json={"name": "general"}, headers=alice.headers)
        assert r.status_code == 201
        assert r.json()["name"] == "general" and r.json()["last_seq"] == 0
        assert r.json()["private"] is False
        r = client.post("/rooms", json={"name": "general"}, headers=bob.headers)
        assert r.status_code == 409 and r.json()["error"] == "conflict"
        for bad in ("General", "-x", "", "a" * 65, "has space", "ünï"):
            r = client.post("/rooms", json={"name": bad}, headers=alice.headers)
            assert r.status_code == 422 and r.json()["error"] == "validation_error", bad
        client.post("/rooms", json={"name": "secret", "private": True}, headers=alice.headers)
        names = [r["name"] for r in client.get("/rooms", headers=bob.headers).json()]
        assert names == ["general"]
        names = [r["name"] for r in client.get("/rooms", headers=alice.headers).json()]
        assert names == ["general", "secret"]
        assert client.get("/rooms/general", headers=bob.headers).json()["name"] == "general"
        r = client.get("/rooms/missing", headers=bob.headers)
        assert r.status_code == 404 and r.json()["error"] == "room_not_found"
        assert client.get("/rooms/secret", headers=bob.headers).status_code == 403
        assert client.get("/rooms").status_code == 401


def test_private_room_members(server: LiveServer, factory: Factory) -> None:
    tenant = factory.tenant()
    owner = factory.account(tenant)
    bob = factory.account(tenant)
    carol = factory.account(tenant)
    admin = factory.account(tenant, role="admin")
    factory.room(owner, "secret", private=True)
    with server.http() as client:
        r = client.post(
            "/rooms/secret/members", json={"username": bob.username}, headers=carol.headers
        )
        assert r.status_code == 403
        r = client.post(
            "/rooms/secret/members", json={"username": bob.username}, headers=owner.headers
        )
        assert r.status_code == 204
        assert client.get("/rooms/secret", headers=bob.headers).status_code == 200
        r = client.post(
            "/rooms/secret/members", json={"username": carol.username}, headers=admin.headers
        )
        assert r.status_code == 204
        r = client.post("/rooms/secret/members", json={"username": "ghost"}, headers=owner.headers)
        assert r.status_code == 404 and r.json()["error"] == "user_not_found"
        r = client.post("/rooms/secret/messages", json={"body": "hi"}, headers=carol.headers)
        assert r.status_code == 201


def test_history_paging_edges(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    factory.room(acct)

    def page(**params: Any) -> tuple[list[int], bool]:
        with server.http() as client:
            r = client.get("/rooms/general/messages", params=params, headers=acct.headers)
        assert r.status_code == 200, r.text
        return [m["seq"] for m in r.json()["messages"]], r.json()["has_more"]

    assert page() == ([], False)
    post_many(server, acct, 12)
    assert page(limit=5) == ([8, 9, 10, 11, 12], True)
    assert page(limit=12) == (list(range(1, 13)), False)
    assert page() == (list(range(1, 13)), False)
    assert page(before=8, limit=5) == ([3, 4, 5, 6, 7], True)
    assert page(before=3, limit=5) == ([1, 2], False)
    assert page(before=6, limit=5) == ([1, 2, 3, 4, 5], False)
    assert page(before=1) == ([], False)
    assert page(after=0, limit=5) == ([1, 2, 3, 4, 5], True)
    assert page(after=7, limit=5) == ([8, 9, 10, 11, 12], False)
    assert page(after=12) == ([], False)
    assert page(after=2, before=6) == ([3, 4, 5], False)
    assert page(after=2, before=9, limit=3) == ([3, 4, 5], True)
    seqs, more = page(before=8, limit=2)
    while more:  # walking back with `before` visits every message once
        older, more = page(before=seqs[0], limit=2)
        seqs = older + seqs
    assert seqs == list(range(1, 8))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "x"},
        {"after": -1},
        {"before": "abc"},
        {"after": 5, "before": 5},
        {"after": 5, "before": 6},
        {"after": 2**63},
    ],
)
def test_history_rejects_bad_parameters(
    server: LiveServer, factory: Factory, params: dict[str, Any]
) -> None:
    acct = factory.account()
    factory.room(acct)
    with server.http() as client:
        r = client.get("/rooms/general/messages", params=params, headers=acct.headers)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


def test_post_message_validation(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    factory.room(acct)
    with server.http() as client:
        r = client.post(
            "/rooms/general/messages",
            json={"body": "hi", "client_msg_id": "k"},
            headers=acct.headers,
        )
        assert r.status_code == 201
        message = r.json()
        assert message["seq"] == 1 and message["client_msg_id"] == "k"
        assert message["kind"] == "user" and message["sender"] == acct.username
        for bad in ({"body": ""}, {"body": "x" * 4001}, {}, {"body": 5}):
            r = client.post("/rooms/general/messages", json=bad, headers=acct.headers)
            assert r.status_code == 422, bad
        r = client.post("/rooms/nope/messages", json={"body": "x"}, headers=acct.headers)
        assert r.status_code == 404


def read_sse(response: httpx.Response, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


def test_sse_stream_and_resume(server: LiveServer, factory: Factory) -> None:
    import json

    acct = factory.account()
    factory.room(acct)
    post_many(server, acct, 3)
    headers = {**acct.headers, "Last-Event-ID": "1"}
    with (
        server.http() as client,
        client.stream("GET", "/rooms/general/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        later = threading.Timer(0.3, post_many, (server, acct, 2))
        later.start()
        events = read_sse(response, 4)
        later.join()
    assert [e["id"] for e in events] == ["2", "3", "4", "5"]
    assert all(e["event"] == "message" for e in events)
    data = [json.loads(e["data"]) for e in events]
    assert [d["body"] for d in data] == ["m2", "m3", "m1", "m2"]
    assert set(data[0]) == {"room", "seq", "sender", "body", "ts", "kind"}
    with server.http() as client:
        r = client.get("/rooms/general/events", headers={**acct.headers, "Last-Event-ID": "x"})
        assert r.status_code == 422


def test_sse_resume_longer_than_the_queue(make_server: Any, factory: Factory) -> None:
    """The replay is drained while it is read: before, a resume of more messages than the
    subscriber's queue waited forever for room."""
    live = make_server(ws={"send_queue_size": 8})
    acct = factory.account(server=live)
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=acct.headers)
    post_many(live, acct, 30)
    headers = {**acct.headers, "Last-Event-ID": "0"}
    with (
        live.http() as client,
        client.stream("GET", "/rooms/general/events", headers=headers) as response,
    ):
        events = read_sse(response, 30)
    assert [int(e["id"]) for e in events] == list(range(1, 31))
