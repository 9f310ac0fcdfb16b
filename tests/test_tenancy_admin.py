"""Tenancy and admin: isolation (in code and in Postgres), broadcasts, user management."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from websockets.sync.client import ClientConnection

from api.db import Database, create_engine
from tests.conftest import ROOT
from tests.factories import Account, Factory
from tests.support import LiveServer, close_of, recv, recv_type, send, settings_for


@dataclass
class Tenant:
    slug: str
    admin: Account
    bob: Account


@pytest.fixture
def twins(factory: Factory) -> tuple[Tenant, Tenant]:
    """Two tenants with the same user names and the same room names."""
    made = []
    for _ in range(2):
        slug = factory.tenant()
        admin = factory.account(slug, "alice", role="admin")
        bob = factory.account(slug, "bob")
        factory.room(admin, "general")
        factory.room(admin, "secret", private=True)
        made.append(Tenant(slug, admin, bob))
    return made[0], made[1]


@contextmanager
def socket_in(
    server: LiveServer,
    acct: Account,
    room: str | None = "general",
) -> Iterator[ClientConnection]:
    with server.ws(f"/ws?token={acct.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        if room:
            send(ws, type="join", room=room)
            recv_type(ws, "joined")
        yield ws


def frames_until_quiet(ws: ClientConnection, quiet: float = 0.4) -> list[dict[str, Any]]:
    frames = []
    try:
        while True:
            frames.append(recv(ws, timeout=quiet))
    except TimeoutError:
        return frames


def test_other_tenants_room_is_byte_identical_to_missing(
    server: LiveServer, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    with server.http() as client:
        client.post("/rooms", json={"name": "only-in-b"}, headers=b.admin.headers)
        for method, path, body in [
            ("GET", "/rooms/{}", None),
            ("GET", "/rooms/{}/messages", None),
            ("POST", "/rooms/{}/messages", {"body": "hi"}),
            ("GET", "/rooms/{}/presence", None),
            ("GET", "/rooms/{}/events", None),
            ("POST", "/rooms/{}/members", {"username": "bob"}),
        ]:
            theirs = client.request(
                method, path.format("only-in-b"), json=body, headers=a.admin.headers
            )
            missing = client.request(
                method, path.format("no-such-room"), json=body, headers=a.admin.headers
            )
            assert theirs.status_code == missing.status_code == 404, path
            assert theirs.content == missing.content, path
        rooms = [r["name"] for r in client.get("/rooms", headers=a.admin.headers).json()]
        assert "only-in-b" not in rooms
        r = client.post(
            "/admin/broadcast", json={"body": "x", "rooms": ["only-in-b"]}, headers=a.admin.headers
        )
        missing = client.post(
            "/admin/broadcast",
            json={"body": "x", "rooms": ["no-such-room"]},
            headers=a.admin.headers,
        )
        assert r.status_code == 404 and r.json()["error"] == "room_not_found"
        assert r.json()["detail"].replace("only-in-b", "X") == missing.json()["detail"].replace(
            "no-such-room", "X"
        )
    with socket_in(server, a.bob, room=None) as ws:
        send(ws, type="join", room="only-in-b")
        their_room = ws.recv(timeout=5)
        send(ws, type="join", room="no-such-room")
        assert their_room == ws.recv(timeout=5)


def test_no_cross_tenant_delivery_while_both_are_busy(
    server: LiveServer, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    with ExitStack() as stack:
        readers = {t.slug: stack.enter_context(socket_in(server, t.bob)) for t in (a, b)}
        writers = {t.slug: stack.enter_context(socket_in(server, t.admin)) for t in (a, b)}

        def chatter(tenant: Tenant) -> None:
            ws = writers[tenant.slug]
            for i in range(40):
                send(ws, type="send", room="general", body=f"{tenant.slug}:{i}")
            acks = 0
            while acks < 40:
                acks += recv(ws)["type"] == "ack"

        threads = [threading.Thread(target=chatter, args=(t,)) for t in (a, b)]
        for thread in threads:
            thread.start()
        with server.http() as client:
            for t in (a, b):
                r = client.post(
                    "/admin/broadcast", json={"body": f"news for {t.slug}"}, headers=t.admin.headers
                )
                assert r.status_code == 202
        for thread in threads:
            thread.join(30)
        for t in (a, b):
            frames = frames_until_quiet(readers[t.slug])
            messages = [f for f in frames if f["type"] == "message"]
            assert [m["seq"] for m in messages] == list(range(1, 41))
            assert all(m["body"].startswith(f"{t.slug}:") for m in messages)
            broadcasts = [f for f in frames if f["type"] == "broadcast"]
            assert [f["body"] for f in broadcasts] == [f"news for {t.slug}"]
            presence = [f for f in frames if f["type"] == "presence"]
            assert all(f["user"] in ("alice", "bob") for f in presence)


def test_tenant_broadcast(server: LiveServer, twins: tuple[Tenant, Tenant]) -> None:
    a, b = twins
    with (
        socket_in(server, a.bob, room=None) as bob_ws,
        socket_in(server, a.admin, room=None) as alice_ws,
        socket_in(server, b.bob, room=None) as other_ws,
    ):
        with server.http() as client:
            r = client.post(
                "/admin/broadcast", json={"body": "maintenance at 5"}, headers=a.admin.headers
            )
        assert r.status_code == 202
        answer = r.json()
        assert answer["recipients"] == 2 and isinstance(answer["id"], int)
        for ws in (bob_ws, alice_ws):
            frame = recv_type(ws, "broadcast")
            assert frame["id"] == answer["id"] and frame["body"] == "maintenance at 5"
            assert frame["ts"].endswith("Z")
        assert frames_until_quiet(other_ws) == []
    with server.http() as client:
        listed = client.get("/broadcasts?after=0", headers=a.bob.headers).json()
        assert [x["body"] for x in listed["broadcasts"]] == ["maintenance at 5"]
        assert listed["has_more"] is False
        after = client.get(f"/broadcasts?after={answer['id']}", headers=a.bob.headers).json()
        assert after["broadcasts"] == []
        assert client.get("/broadcasts", headers=b.bob.headers).json()["broadcasts"] == []


def test_room_broadcast_goes_into_history(server: LiveServer, twins: tuple[Tenant, Tenant]) -> None:
    a, b = twins
    with socket_in(server, a.bob) as bob_ws, socket_in(server, b.bob) as other_ws:
        with server.http() as client:
            client.post("/rooms/general/messages", json={"body": "before"}, headers=a.bob.headers)
            r = client.post(
                "/admin/broadcast",
                json={"body": "room news", "rooms": ["general", "secret"]},
                headers=a.admin.headers,
            )
            assert r.status_code == 202 and r.json()["recipients"] == 1
            frames = [f for f in frames_until_quiet(bob_ws) if f["type"] == "message"]
            assert [(f["seq"], f["kind"], f["body"]) for f in frames] == [
                (1, "user", "before"),
                (2, "broadcast", "room news"),
            ]
            history = client.get("/rooms/secret/messages", headers=a.admin.headers).json()
            assert [(m["seq"], m["kind"], m["sender"]) for m in history["messages"]] == [
                (1, "broadcast", "alice")
            ]
            # Room broadcasts live in room history, not in the tenant-wide list.
            assert client.get("/broadcasts", headers=a.bob.headers).json()["broadcasts"] == []
        assert [f for f in frames_until_quiet(other_ws) if f["type"] == "message"] == []


def test_broadcast_refusals_and_validation(
    server: LiveServer, twins: tuple[Tenant, Tenant]
) -> None:
    a, _ = twins
    with server.http() as client:
        r = client.post("/admin/broadcast", json={"body": "x"}, headers=a.bob.headers)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        r = client.post("/admin/broadcast", json={"body": "x"})
        assert r.status_code == 401
        for bad in (
            {"body": ""},
            {"body": "x", "rooms": []},
            {"rooms": ["general"]},
            {"body": "x" * 4001},
        ):
            r = client.post("/admin/broadcast", json=bad, headers=a.admin.headers)
            assert r.status_code == 422, bad


def test_idempotency_key_survives_restart(make_server: Any, factory: Factory) -> None:
    first = make_server()
    tenant = factory.tenant()
    factory.user(tenant, "alice", role="admin")
    admin = factory.login(tenant, "alice", server=first)
    headers = {**admin.headers, "Idempotency-Key": "announce-42"}
    with first.http() as client:
        r1 = client.post("/admin/broadcast", json={"body": "once"}, headers=headers)
        r2 = client.post("/admin/broadcast", json={"body": "once"}, headers=headers)
    assert r1.status_code == r2.status_code == 202 and r1.json() == r2.json()
    first.stop()
    second = make_server()
    with second.ws(f"/ws?token={admin.access_token}") as ws:
        recv(ws)
        with second.http() as client:
            r3 = client.post("/admin/broadcast", json={"body": "once"}, headers=headers)
            assert r3.status_code == 202 and r3.json() == r1.json()
            listed = client.get("/broadcasts", headers=admin.headers).json()["broadcasts"]
            assert [x["body"] for x in listed] == ["once"]
            other = client.post(
                "/admin/broadcast",
                json={"body": "another"},
                headers={**admin.headers, "Idempotency-Key": "announce-43"},
            )
            assert other.json()["id"] != r1.json()["id"]
        frames = frames_until_quiet(ws)
        assert [f["body"] for f in frames if f["type"] == "broadcast"] == ["another"]


def test_admin_user_management(server: LiveServer, twins: tuple[Tenant, Tenant]) -> None:
    a, b = twins
    with server.http() as client:
        r = client.post(
            "/admin/users",
            json={"username": "carol", "password": "long password 1", "role": "member"},
            headers=a.admin.headers,
        )
        assert r.status_code == 201 and r.json()["username"] == "carol"
        r = client.post(
            "/admin/users",
            json={"username": "carol", "password": "long password 1"},
            headers=a.admin.headers,
        )
        assert r.status_code == 409
        for bad in (
            {"username": "dave", "password": "short"},
            {"username": "dave", "password": "x" * 2000},
            {"username": "dave", "password": "long password 1", "role": "root"},
            {"username": "bad name", "password": "long password 1"},
        ):
            assert (
                client.post("/admin/users", json=bad, headers=a.admin.headers).status_code == 422
            ), bad
        names = [u["username"] for u in client.get("/admin/users", headers=a.admin.headers).json()]
        assert names == ["alice", "bob", "carol"]
        assert client.get("/admin/users", headers=a.bob.headers).status_code == 403
        assert client.delete("/admin/users/carol", headers=a.bob.headers).status_code == 403
        assert client.delete("/admin/users/nobody", headers=a.admin.headers).status_code == 404
        # B's admin cannot see or touch A's carol.
        assert client.delete("/admin/users/carol", headers=b.admin.headers).status_code == 404
        assert "carol" not in [
            u["username"] for u in client.get("/admin/users", headers=b.admin.headers).json()
        ]


def test_disable_user_closes_sockets_and_blocks_login(
    server: LiveServer, factory: Factory, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    with socket_in(server, a.bob) as bob_ws, socket_in(server, b.bob) as twin_ws:
        with server.http() as client:
            assert client.delete("/admin/users/bob", headers=a.admin.headers).status_code == 204
        started = time.monotonic()
        assert close_of(bob_ws) == (1008, "revoked")
        assert time.monotonic() - started < 1.0
        send(twin_ws, type="ping")  # the other tenant's bob is untouched
        assert recv_type(twin_ws, "pong") == {"type": "pong"}
    with server.http() as client:
        r = client.post(
            "/auth/login",
            json={"tenant": a.slug, "username": "bob", "password": "correct horse battery"},
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_credentials"
        assert client.get("/auth/me", headers=a.bob.headers).status_code == 401
        users = {
            u["username"]: u for u in client.get("/admin/users", headers=a.admin.headers).json()
        }
        assert users["bob"]["disabled"] is True


# Row-level security, as the deployed role ----------------------------------------------
def run_db(database_url: str, work: Any, pool_size: int = 2) -> Any:
    async def main() -> Any:
        db = Database(
            create_engine(settings_for(database_url), pool_size=pool_size, max_overflow=0)
        )
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def test_rls_as_the_application_role(
    database_url: str, factory: Factory, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    ids = factory.tenant_ids
    with factory.server.http() as client:
        for t in (a, b):
            client.post("/rooms/general/messages", json={"body": t.slug}, headers=t.bob.headers)

    async def work(db: Database) -> None:
        async with db.engine.connect() as conn:
            who = (await conn.execute(text("SELECT current_user"))).scalar()
            assert who == "switchboard_app"
        async with db.tx(ids[a.slug]) as repo:  # no tenant filter in these queries
            bodies = (await repo.conn.execute(text("SELECT body FROM message"))).scalars().all()
            assert bodies == [a.slug]
            users = (await repo.conn.execute(text("SELECT count(*) FROM app_user"))).scalar()
            assert users == 2
        async with db.tx() as repo:  # no tenant at all: nothing is visible
            assert (await repo.conn.execute(text("SELECT count(*) FROM message"))).scalar() == 0
            assert (await repo.conn.execute(text("SELECT count(*) FROM room"))).scalar() == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            async with db.tx(ids[a.slug]) as repo:
                await repo.conn.execute(
                    text("INSERT INTO room (tenant_id, name) VALUES (:t, 'smuggled')"),
                    {"t": ids[b.slug]},
                )
        async with db.tx(ids[a.slug]) as repo:  # nor can it move a row into another tenant
            moved = await repo.conn.execute(
                text("UPDATE room SET name = name WHERE tenant_id = :t"), {"t": ids[b.slug]}
            )
            assert moved.rowcount == 0

    run_db(database_url, work)

    async def pooled(db: Database) -> None:
        for _ in range(3):  # one pooled connection, used by A and then by nobody
            async with db.tx(ids[a.slug]) as repo:
                assert (await repo.conn.execute(text("SELECT count(*) FROM room"))).scalar() == 2
            await _sees_no_tenant(db)

    run_db(database_url, pooled, pool_size=1)

    async def raw(db: Database) -> None:
        """The joins' raw transactions: stamped, and never pooled half-done."""
        async with db.raw_tx(ids[a.slug]) as conn:
            assert await conn.fetchval("SELECT count(*) FROM room") == 2
        view = await db.join_view(ids[a.slug], "general", 0, 10)
        assert view is not None and view.room.tenant_id == ids[a.slug]
        assert await db.join_view(ids[a.slug], "nowhere", 0, 10) is None
        with pytest.raises(ZeroDivisionError):
            async with db.raw_tx(ids[a.slug]):
                raise ZeroDivisionError
        stuck = asyncio.ensure_future(_slow_raw_tx(db, ids[a.slug]))
        await asyncio.sleep(0.2)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        await _sees_no_tenant(db)  # the one pooled connection: no transaction, no tenant

    run_db(database_url, raw, pool_size=1)


async def _sees_no_tenant(db: Database) -> None:
    """A transaction without a tenant: no stamp left behind by an earlier user of the
    connection, so row-level security shows nothing."""
    async with db.tx() as repo:
        setting = (
            await repo.conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
        ).scalar()
        assert setting in (None, "")
        assert (await repo.conn.execute(text("SELECT count(*) FROM room"))).scalar() == 0


async def _slow_raw_tx(db: Database, tenant_id: int) -> None:
    async with db.raw_tx(tenant_id) as conn:
        await conn.execute("SELECT pg_sleep(5)")


def test_catalog_every_tenant_table_has_rls_forced(database_url: str) -> None:
    async def work(db: Database) -> list[Any]:
        async with db.engine.connect() as conn:
            return list(
                await conn.execute(
                    text("""
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
                FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                WHERE a.attname = 'tenant_id' AND c.relkind = 'r'
                  AND c.relnamespace = 'public'::regnamespace""")
                )
            )

    rows = run_db(database_url, work)
    assert len(rows) >= 8
    for name, enabled, forced, policies in rows:
        assert enabled and forced and policies >= 1, name
    assert run_db(database_url, lambda db: db.isolation_problems()) == []


def test_server_refuses_a_role_that_bypasses_rls(database_url: str) -> None:
    settings = settings_for(database_url, database={"app_role": ""})  # log in as superuser

    async def start() -> None:
        from api.services import Services

        services = Services.build(settings)
        try:
            await services.start()
        finally:
            await services.stop()

    with pytest.raises(RuntimeError, match="superuser"):
        asyncio.run(start())


def test_cli_broadcast_reaches_a_running_server(
    server: LiveServer, database_url: str, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env["DATABASE_URL"] = database_url

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", "broadcast", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with socket_in(server, a.bob) as bob_ws, socket_in(server, b.bob) as other_ws:
        r = cli("--tenant", a.slug, "from the shell")
        assert r.returncode == 0 and "handed to the running server" in r.stdout, r.stderr
        assert "see the server" not in r.stdout  # it said nothing about what happened
        frame = recv_type(bob_ws, "broadcast", timeout=10)
        assert frame["body"] == "from the shell"
        r = cli("--tenant", a.slug, "--room", "general", "room note")
        assert r.returncode == 0, r.stderr
        message = recv_type(bob_ws, "message", timeout=10)
        assert (message["kind"], message["body"], message["sender"], message["seq"]) == (
            "broadcast",
            "room note",
            "system",
            1,
        )
        leaked = [f for f in frames_until_quiet(other_ws) if f["type"] in ("message", "broadcast")]
        assert leaked == []
    assert cli("--tenant", "nope", "x").returncode == 1
    r = cli("--tenant", a.slug, "--room", "missing", "x")
    assert r.returncode == 1 and "not found" in r.stderr


def test_removed_member_leaves_private_room_live(
    server: LiveServer, twins: tuple[Tenant, Tenant]
) -> None:
    a, b = twins
    with server.http() as client:
        r = client.post("/rooms/secret/members", json={"username": "bob"}, headers=a.admin.headers)
        assert r.status_code == 204
    with (
        socket_in(server, a.bob, room="secret") as bob_ws,
        socket_in(server, b.admin, room="secret") as twin_ws,
    ):
        with server.http() as client:
            r = client.delete("/rooms/secret/members/bob", headers=b.admin.headers)
            assert r.status_code == 404  # B's admin removes nothing of A's
            r = client.delete("/rooms/secret/members/bob", headers=a.bob.headers)
            assert r.status_code == 403  # neither admin nor creator
            r = client.delete("/rooms/secret/members/bob", headers=a.admin.headers)
            assert r.status_code == 204
            assert recv_type(bob_ws, "left") == {
                "type": "left",
                "room": "secret",
                "reason": "removed",
            }
            client.post("/rooms/secret/messages", json={"body": "after"}, headers=a.admin.headers)
            assert [f for f in frames_until_quiet(bob_ws) if f["type"] == "message"] == []
            send(bob_ws, type="send", room="secret", body="still here?")
            assert recv_type(bob_ws, "error")["code"] == "not_joined"
            send(bob_ws, type="join", room="secret")
            assert recv_type(bob_ws, "error")["code"] == "forbidden"
            assert client.get("/rooms/secret/messages", headers=a.bob.headers).status_code == 403
        send(twin_ws, type="ping")
        assert recv_type(twin_ws, "pong") == {"type": "pong"}


def test_admin_sees_every_room(server: LiveServer, twins: tuple[Tenant, Tenant]) -> None:
    a, b = twins
    with server.http() as client:
        client.post("/rooms", json={"name": "bobs-own", "private": True}, headers=a.bob.headers)
        rooms = client.get("/admin/rooms", headers=a.admin.headers).json()
        assert [(r["name"], r["private"], r["members"]) for r in rooms] == [
            ("bobs-own", True, 1),
            ("general", False, 0),
            ("secret", True, 1),
        ]
        assert client.get("/admin/rooms", headers=a.bob.headers).status_code == 403
        assert "bobs-own" not in [
            r["name"] for r in client.get("/admin/rooms", headers=b.admin.headers).json()
        ]
