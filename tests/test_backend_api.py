"""An app's backend with API keys: scopes, shown once and stored hashed, revoked at once;
`/tokens` and `/tokens/ws-ticket` for a user created on demand who then connects; a
1000-message `/publish` in one transaction, retried without storing anything twice."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from tests.factories import Account, Factory
from tests.support import LiveServer, joined, recv, recv_type


def make_key(server: LiveServer, admin: Account, name: str, *scopes: str) -> dict[str, Any]:
    with server.http() as client:
        r = client.post(
            "/admin/api-keys", json={"name": name, "scopes": list(scopes)}, headers=admin.headers
        )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_shown_once_stored_hashed_and_scoped(
    server: LiveServer, factory: Factory, database_url: str
) -> None:
    admin = factory.account(role="admin")
    factory.room(admin)
    publisher = make_key(server, admin, "billing", "publish")
    assert publisher["key"].startswith("sbk_") and publisher["scopes"] == ["publish"]
    minter = make_key(server, admin, "backend", "tokens")
    with server.http() as client:
        listed = client.get("/admin/api-keys", headers=admin.headers).json()
        assert {k["name"] for k in listed} == {"billing", "backend"}
        assert all("key" not in k for k in listed)
        h = bearer(publisher["key"])
        posted = client.post("/rooms/general/messages", json={"body": "invoice paid"}, headers=h)
        assert posted.status_code == 201 and posted.json()["sender"] == "@billing"
        for method, path in (
            ("GET", "/rooms"),
            ("POST", "/auth/ws-ticket"),
            ("GET", "/admin/users"),
            ("POST", "/tokens"),
        ):
            r = client.request(method, path, headers=h, json={"username": "x"})
            assert r.status_code == 403 and r.json()["error"] == "forbidden", path
        r = client.post(
            "/publish",
            json={"messages": [{"room": "general", "body": "x"}]},
            headers=bearer(minter["key"]),
        )
        assert r.status_code == 403
        assert client.get("/rooms", headers=bearer("sbk_1_not-a-key")).status_code == 401
        users = client.get("/admin/users", headers=admin.headers).json()
        assert all(not u["username"].startswith("@") for u in users)

    async def stored_hashes() -> list[bytes]:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(dsn)
        try:
            return [r["key_hash"] for r in await conn.fetch("SELECT key_hash FROM api_key")]
        finally:
            await conn.close()

    hashes = asyncio.run(stored_hashes())
    secret = publisher["key"].split("_", 2)[2]
    assert hashlib.sha256(secret.encode()).digest() in hashes
    assert all(publisher["key"].encode() not in h for h in hashes)
    with server.http() as client:
        assert (
            client.delete(f"/admin/api-keys/{publisher['id']}", headers=admin.headers).status_code
            == 204
        )
        r = client.post(
            "/rooms/general/messages", json={"body": "x"}, headers=bearer(publisher["key"])
        )
        assert r.status_code == 401
        assert (
            client.delete(f"/admin/api-keys/{publisher['id']}", headers=admin.headers).status_code
            == 404
        )


def test_tokens_for_a_new_user_who_then_connects(server: LiveServer, factory: Factory) -> None:
    admin = factory.account(role="admin")
    factory.room(admin)
    key = bearer(make_key(server, admin, "backend", "tokens")["key"])
    with server.http() as client:
        r = client.post("/tokens", json={"username": "newbie"}, headers=key)
        assert r.status_code == 404 and r.json()["error"] == "user_not_found"
        r = client.post(
            "/tokens", json={"username": "newbie", "create": True, "ttl": 600}, headers=key
        )
        assert r.status_code == 200 and r.json()["expires_in"] == 600
        token = r.json()["access_token"]
        me = client.get("/auth/me", headers=bearer(token)).json()
        assert me == {"username": "newbie", "tenant": admin.tenant, "role": "member"}
        ticket = client.post("/tokens/ws-ticket", json={"username": "newbie"}, headers=key).json()
    newbie = Account(admin.tenant, "newbie", "", token, "", "")
    with joined(server, newbie) as ws:
        with server.http() as client:
            client.post("/rooms/general/messages", json={"body": "welcome"}, headers=admin.headers)
        assert recv_type(ws, "message")["body"] == "welcome"
    with server.ws(f"/ws?ticket={ticket['ticket']}") as ws:
        assert recv(ws)["user"] == "newbie"
    with server.ws(f"/ws?ticket={ticket['ticket']}") as ws:  # single use
        from tests.support import close_of

        assert close_of(ws)[0] == 1008


def test_publish_a_batch_of_1000_with_a_retry(server: LiveServer, factory: Factory) -> None:
    admin = factory.account(role="admin")
    for room in ("general", "billing"):
        factory.room(admin, room)
    key = bearer(make_key(server, admin, "importer", "publish")["key"])
    batch = [
        {"room": "general" if i % 3 else "billing", "body": f"m{i}", "client_msg_id": f"imp-{i}"}
        for i in range(998)
    ]
    batch.insert(10, {"room": "nowhere", "body": "lost"})
    batch.insert(20, {"room": "general", "body": "   "})
    with server.http(timeout=60) as client:
        first = client.post("/publish", json={"messages": batch}, headers=key)
        assert first.status_code == 200, first.text
        again = client.post("/publish", json={"messages": batch}, headers=key)
        too_many = client.post("/publish", json={"messages": batch + batch[:5]}, headers=key)
        assert too_many.status_code == 422
        history = client.get("/rooms/general/messages?after=0&limit=500", headers=admin.headers)
    results = first.json()["results"]
    assert len(results) == 1000
    assert results[10] == {
        "room": "nowhere",
        "error": "room_not_found",
        "detail": results[10]["detail"],
    }
    assert results[20]["error"] == "body_invalid"
    seqs = [r["seq"] for r in results if "seq" in r]
    assert len(seqs) == 998
    per_room: dict[str, list[int]] = {}
    for r in results:
        if "seq" in r:
            per_room.setdefault(r["room"], []).append(r["seq"])
    for got in per_room.values():
        assert got == list(range(1, len(got) + 1))  # gap-free, in request order
    assert again.json()["results"] == results  # the retry stored nothing twice
    assert history.json()["messages"][0]["sender"] == "@importer"
