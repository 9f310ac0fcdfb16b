"""Webhooks: signed deliveries that survive a failing endpoint and a SIGKILLed server,
`failed` after the limit then redelivered, `message.unseen` for members with no socket,
presence events, no head-of-line blocking across tenants, and SSRF refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories import Account, Factory
from tests.processes import Worker
from tests.support import LiveServer, eventually, joined
from tests.webhook_receiver import Receiver

FAST = {
    "allow_private_addresses": True,  # the receiver is on 127.0.0.1
    "poll_seconds": 0.05,
    "backoff_base_seconds": 0.1,
    "backoff_max_seconds": 0.5,
    "timeout_seconds": 1.0,
    "max_attempts": 1000,  # fast retries must not run out while a slow machine catches up
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def register(live: LiveServer, admin: Account, receiver: Receiver, *events: str) -> int:
    with live.http() as client:
        r = client.post(
            "/admin/webhooks",
            json={"url": receiver.url, "events": list(events)},
            headers=admin.headers,
        )
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    assert receiver.secret.startswith("whsec_")
    endpoint_id: int = r.json()["id"]
    return endpoint_id


def deliveries(live: LiveServer, admin: Account, endpoint: int) -> list[dict[str, Any]]:
    with live.http() as client:
        r = client.get(f"/admin/webhooks/{endpoint}/deliveries", headers=admin.headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def post(live: LiveServer, acct: Account, room: str, body: str) -> None:
    with live.http() as client:
        r = client.post(f"/rooms/{room}/messages", json={"body": body}, headers=acct.headers)
    assert r.status_code == 201, r.text


def test_signed_events_survive_an_endpoint_that_fails_for_a_while(
    make_server: Any, factory: Factory, receiver: Receiver
) -> None:
    live = make_server(webhooks=FAST)
    admin = factory.account(role="admin", server=live)
    endpoint = register(live, admin, receiver, "message.created", "room.created")
    receiver.mode = "fail"
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=admin.headers)
    for i in range(20):
        post(live, admin, "general", f"m{i}")
    eventually(lambda: receiver.requests >= 10)  # failing: retried, not lost
    receiver.mode = "ok"
    eventually(lambda: len(receiver.of_type("message.created")) >= 20, timeout=30)
    eventually(lambda: len(receiver.of_type("room.created")) == 1, timeout=30)
    created = receiver.of_type("message.created")
    assert sorted(e["data"]["seq"] for e in created) == list(range(1, 21))
    assert len({e["id"] for e in created}) == 20 and receiver.bad_signatures == 0
    assert all(e["tenant"] == admin.tenant and e["ts"].endswith("Z") for e in created)
    assert created[0]["data"]["sender"] == admin.username
    assert receiver.of_type("room.created")[0]["data"]["name"] == "general"
    statuses = deliveries(live, admin, endpoint)
    assert {d["status"] for d in statuses} == {"delivered"}
    assert max(d["attempts"] for d in statuses) > 1


def test_failed_after_the_limit_then_redelivered_with_its_id(
    make_server: Any, factory: Factory, receiver: Receiver
) -> None:
    live = make_server(webhooks={**FAST, "max_attempts": 3})
    admin = factory.account(role="admin", server=live)
    endpoint = register(live, admin, receiver, "user.disabled")
    factory.account(admin.tenant, "mallory", server=live)
    receiver.mode = "fail"
    with live.http() as client:
        assert client.delete("/admin/users/mallory", headers=admin.headers).status_code == 204
    eventually(lambda: [d["status"] for d in deliveries(live, admin, endpoint)] == ["failed"])
    failed = deliveries(live, admin, endpoint)[0]
    assert failed["attempts"] == 3 and failed["last_error"] == "HTTP 503"
    receiver.mode = "ok"
    with live.http() as client:
        r = client.post(
            f"/admin/webhooks/{endpoint}/redeliver",
            json={"event_id": failed["event_id"]},
            headers=admin.headers,
        )
        assert r.status_code == 202
    eventually(lambda: len(receiver.events) == 1)
    assert receiver.events[0]["id"] == failed["event_id"]
    assert receiver.events[0]["data"] == {"user": "mallory"}
    assert deliveries(live, admin, endpoint)[0]["status"] == "delivered"


def test_unseen_and_presence_events(make_server: Any, factory: Factory, receiver: Receiver) -> None:
    live = make_server(webhooks=FAST)
    admin = factory.account(role="admin", server=live)
    bob = factory.account(admin.tenant, "bob", server=live)
    register(live, admin, receiver, "message.unseen", "presence.online", "presence.offline")
    with live.http() as client:
        dm = client.post("/dms", json={"username": "bob"}, headers=admin.headers).json()["name"]
    post(live, admin, dm, "are you there?")  # bob has no socket: a push for him
    eventually(lambda: len(receiver.of_type("message.unseen")) == 1)
    unseen = receiver.of_type("message.unseen")[0]["data"]
    assert unseen["user"] == "bob" and unseen["message"]["body"] == "are you there?"
    with joined(live, bob, dm):
        eventually(lambda: len(receiver.of_type("presence.online")) == 1)
        post(live, admin, dm, "now you are")  # bob is online: nothing to push
    eventually(lambda: len(receiver.of_type("presence.offline")) == 1)
    assert receiver.of_type("presence.online")[0]["data"] == {"user": "bob"}
    post(live, admin, dm, "gone again")
    eventually(lambda: len(receiver.of_type("message.unseen")) == 2)
    bodies = [e["data"]["message"]["body"] for e in receiver.of_type("message.unseen")]
    assert bodies == ["are you there?", "gone again"]


def test_a_hanging_endpoint_does_not_hold_up_another_tenant(
    make_server: Any, factory: Factory
) -> None:
    live = make_server(webhooks={**FAST, "timeout_seconds": 20.0})
    slow, fast = Receiver(), Receiver()
    try:
        a = factory.account(role="admin", server=live)
        b = factory.account(role="admin", server=live)
        register(live, a, slow, "message.created")
        register(live, b, fast, "message.created")
        slow.mode = "hang"
        for acct in (a, b):
            with live.http() as client:
                client.post("/rooms", json={"name": "general"}, headers=acct.headers)
            for i in range(10):
                post(live, acct, "general", f"m{i}")
        eventually(lambda: len(fast.events) == 10)  # while every call to `slow` hangs
        assert slow.events == [] and slow.requests >= 1
        slow.mode = "ok"
        slow.release.set()
        eventually(lambda: len(slow.events) == 10, timeout=30)
    finally:
        slow.stop()
        fast.stop()


def test_events_pending_when_the_server_is_killed_are_delivered_after_restart(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    worker = Worker(
        database_url,
        None,
        tmp_path,
        SWITCHBOARD_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES="true",
        SWITCHBOARD_WEBHOOKS__POLL_SECONDS="0.05",
        SWITCHBOARD_WEBHOOKS__BACKOFF_BASE_SECONDS="0.2",
        SWITCHBOARD_WEBHOOKS__BACKOFF_MAX_SECONDS="0.5",
    ).start()
    receiver = Receiver()
    port = receiver.port
    receiver.stop()  # nothing listens there yet: every attempt is refused
    try:
        tenant = factory.tenant()
        password = factory.user(tenant, "alice", role="admin")
        with httpx.Client(base_url=worker.base_url, timeout=10) as client:
            login = {"tenant": tenant, "username": "alice", "password": password}
            token = client.post("/auth/login", json=login).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            r = client.post(
                "/admin/webhooks",
                json={"url": f"http://127.0.0.1:{port}/hooks", "events": ["message.created"]},
                headers=headers,
            )
            secret = r.json()["secret"]
            client.post("/rooms", json={"name": "general"}, headers=headers)
            for i in range(30):
                client.post("/rooms/general/messages", json={"body": f"m{i}"}, headers=headers)
        worker.kill()  # SIGKILL, with all 30 pending
        receiver = Receiver(port)
        receiver.secret = secret
        worker.start()
        eventually(lambda: len(receiver.events) >= 30, timeout=60)
        assert sorted({e["data"]["seq"] for e in receiver.events}) == list(range(1, 31))
    finally:
        worker.kill()
        receiver.stop()


def test_ssrf_refusals_at_registration_and_at_delivery(
    make_server: Any, factory: Factory, database_url: str, receiver: Receiver
) -> None:
    server = make_server()  # default webhook settings: private addresses refused
    admin = factory.account(role="admin", server=server)
    refused = [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://no-such-host.invalid/hook",
        "ftp://example.com/hook",
    ]
    with server.http() as client:
        for url in refused:
            r = client.post(
                "/admin/webhooks",
                json={"url": url, "events": ["room.created"]},
                headers=admin.headers,
            )
            assert r.status_code == 422, url
        r = client.post(
            "/admin/webhooks",
            json={"url": "http://93.184.216.34/hook", "events": ["room.created"]},
            headers=admin.headers,
        )
        assert r.status_code == 201  # a public address is fine (nothing is called yet)
        r = client.post(
            "/admin/webhooks",
            json={"url": receiver.url, "events": ["nope"]},
            headers=admin.headers,
        )
        assert r.status_code == 422

    # DNS changed after registration (here: the row points at loopback): not called.
    async def sneak_in() -> int:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(dsn)
        try:
            tenant_id = await conn.fetchval("SELECT id FROM tenant WHERE slug = $1", admin.tenant)
            endpoint: int = await conn.fetchval(
                "INSERT INTO webhook_endpoint (tenant_id, url, events, secret) "
                "VALUES ($1, $2, ARRAY['room.created'], 'whsec_c2VjcmV0c2VjcmV0') RETURNING id",
                tenant_id,
                receiver.url,
            )
            return endpoint
        finally:
            await conn.close()

    endpoint = asyncio.run(sneak_in())
    factory.room(admin, "lobby")
    eventually(
        lambda: any(
            (d["last_error"] or "").startswith("refused")
            for d in deliveries(server, admin, endpoint)
        )
    )
    assert receiver.requests == 0
