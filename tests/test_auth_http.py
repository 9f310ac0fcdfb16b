"""HTTP authentication: login, refresh rotation and reuse, logout, me, tickets, throttling,
CSRF, forged tokens, hostile passwords, and the error shape."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from os import SCHED_IDLE
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.factories import Factory
from tests.processes import Worker
from tests.support import ORIGIN, TEST_SECRET, LiveServer


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def me(server: LiveServer, **kw: Any) -> Any:
    with server.http() as client:
        return client.get("/auth/me", **kw)


def test_login_sets_pair_and_cookie(server: LiveServer, factory: Factory) -> None:
    tenant = factory.tenant()
    factory.user(tenant, "alice", role="admin")
    with server.http() as client:
        r = client.post(
            "/auth/login",
            json={"tenant": tenant, "username": "alice", "password": "correct horse battery"},
        )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["refresh_token"] and body["access_token"]
    cookie = r.headers["set-cookie"].lower()
    for attribute in ("session=", "httponly", "samesite=lax", "path=/"):
        assert attribute in cookie
    assert "secure" not in cookie
    claims = claims_of(body["access_token"])
    assert claims["typ"] == "access" and claims["role"] == "admin"
    assert {"sub", "tid", "sid", "iat", "exp", "iss", "aud"} <= claims.keys()
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    # Other services verify with the same secret, exactly as given.
    jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"], audience="switchboard")
    r = me(server, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.json() == {"username": "alice", "tenant": tenant, "role": "admin"}


def test_secure_cookie_setting(make_server: Any, factory: Factory) -> None:
    live = make_server(http={"secure_cookies": True})
    tenant = factory.tenant()
    factory.user(tenant, "sam")
    with live.http() as client:
        r = client.post(
            "/auth/login",
            json={"tenant": tenant, "username": "sam", "password": "correct horse battery"},
        )
    assert "secure" in r.headers["set-cookie"].lower()


def test_every_login_failure_looks_the_same(server: LiveServer, factory: Factory) -> None:
    tenant = factory.tenant()
    factory.user(tenant, "alice")
    factory.user(tenant, "gone")
    server.call(lambda s: s.accounts.disable_user(factory.tenant_ids[tenant], "gone"))
    attempts = [
        {"tenant": "no-such-tenant", "username": "alice", "password": "correct horse battery"},
        {"tenant": tenant, "username": "nobody", "password": "correct horse battery"},
        {"tenant": tenant, "username": "alice", "password": "wrong password!"},
        {"tenant": tenant, "username": "gone", "password": "correct horse battery"},
    ]
    bodies = []
    with server.http() as client:
        for attempt in attempts:
            r = client.post("/auth/login", json=attempt)
            assert r.status_code == 401
            bodies.append(r.content)
    assert len(set(bodies)) == 1
    assert b'"error":"invalid_credentials"' in bodies[0]


def test_refresh_rotates_and_reuse_revokes_session(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.http() as client:
        r = client.post("/auth/refresh", json={"refresh_token": acct.refresh_token})
        assert r.status_code == 200
        pair = r.json()
        assert pair["refresh_token"] != acct.refresh_token
        new_access = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.get("/auth/me", headers=new_access).status_code == 200
        # The old refresh token is dead; presenting it revokes the whole session.
        r = client.post("/auth/refresh", json={"refresh_token": acct.refresh_token})
        assert r.status_code == 401 and r.json()["error"] == "revoked"
        assert client.get("/auth/me", headers=new_access).status_code == 401
        r = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401
        for junk in ("nonsense", "1.2.3", "x" * 299):
            r = client.post("/auth/refresh", json={"refresh_token": junk})
            assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_logout_kills_refresh_cookie_and_access(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.http() as client:
        by_cookie = {"Cookie": f"session={acct.cookie}"}
        assert client.get("/auth/me", headers=by_cookie).status_code == 200
        r = client.post("/auth/logout", headers=acct.headers)
        assert r.status_code == 204
        assert (
            'session=""' in r.headers["set-cookie"]
            or "max-age=0" in r.headers["set-cookie"].lower()
        )
        r = client.get("/auth/me", headers=acct.headers)
        assert r.status_code == 401 and r.json()["error"] == "revoked"
        assert client.get("/auth/me", headers=by_cookie).status_code == 401
        r = client.post("/auth/refresh", json={"refresh_token": acct.refresh_token})
        assert r.status_code == 401


def test_cookie_auth_and_csrf(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.http(cookies={"session": acct.cookie}) as client:
        assert client.get("/auth/me").json()["username"] == acct.username
        r = client.post("/rooms", json={"name": "a"})
        assert r.status_code == 403 and r.json()["error"] == "csrf"
        r = client.post("/rooms", json={"name": "a"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["error"] == "csrf"
        r = client.post("/rooms", json={"name": "a"}, headers={"Origin": ORIGIN})
        assert r.status_code == 201
    with server.http() as client:  # bearer requests are not subject to CSRF
        r = client.post(
            "/rooms", json={"name": "b"}, headers={**acct.headers, "Origin": "http://evil.example"}
        )
        assert r.status_code == 201
        r = client.get("/auth/me", headers={"Cookie": f"session={acct.cookie[:-2]}zz"})
        assert r.status_code == 401


def test_ws_ticket_is_single_use(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.http() as client:
        r = client.post("/auth/ws-ticket", headers=acct.headers)
    assert r.status_code == 200
    ticket, expires_in = r.json()["ticket"], r.json()["expires_in"]
    assert 0 < expires_in <= 60
    with server.ws(f"/ws?ticket={ticket}") as ws:
        assert '"ready"' in ws.recv(timeout=5)
    from tests.support import close_of

    with server.ws(f"/ws?ticket={ticket}") as ws:
        assert close_of(ws) == (1008, "invalid_token")


def forged(server: LiveServer, factory: Factory, **change: Any) -> tuple[str, str]:
    acct = factory.account()
    claims = claims_of(acct.access_token)
    key = change.pop("_key", TEST_SECRET)
    alg = change.pop("_alg", "HS256")
    drop = change.pop("_drop", None)
    claims.update(change)
    if drop:
        del claims[drop]
    if alg == "none":
        return jwt.encode(claims, "", algorithm="none"), acct.access_token
    return jwt.encode(claims, key, algorithm=alg), acct.access_token


@pytest.mark.parametrize(
    "change, error",
    [
        ({"_alg": "none"}, "invalid_token"),
        ({"_key": "another-secret-" + "y" * 40}, "invalid_token"),
        ({"_alg": "HS512"}, "invalid_token"),
        ({"exp": int(time.time()) - 3600}, "expired_token"),
        ({"_drop": "exp"}, "invalid_token"),
        ({"_drop": "iat"}, "invalid_token"),
        ({"aud": "someone-else"}, "invalid_token"),
        ({"iss": "someone-else"}, "invalid_token"),
        ({"typ": "refresh"}, "invalid_token"),
        ({"_drop": "typ"}, "invalid_token"),
        ({"tid": 999999}, "invalid_token"),
        ({"sid": "00000000-0000-0000-0000-000000000000"}, "invalid_token"),
    ],
)
def test_forged_tokens_rejected(
    server: LiveServer, factory: Factory, change: dict[str, Any], error: str
) -> None:
    token, _ = forged(server, factory, **change)
    r = me(server, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"] == error


def test_malformed_authorization_header(server: LiveServer) -> None:
    for header in ("Basic abc", "Bearer", "Bearer not.a.jwt", "token"):
        r = me(server, headers={"Authorization": header})
        assert r.status_code == 401 and set(r.json()) == {"error", "detail"}
    assert me(server).json()["error"] == "unauthorized"


def test_login_throttling(make_server: Any, factory: Factory) -> None:
    live = make_server(limits={"login_failures_per_user": 3, "login_failures_per_address": 6})
    tenant = factory.tenant()
    factory.user(tenant, "alice")
    factory.user(tenant, "bob")
    with live.http() as client:
        for _ in range(3):
            r = client.post(
                "/auth/login",
                json={"tenant": tenant, "username": "alice", "password": "wrong password"},
            )
            assert r.status_code == 401
        r = client.post(
            "/auth/login",
            json={"tenant": tenant, "username": "alice", "password": "correct horse battery"},
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0 and r.json()["error"] == "rate_limited"
        # bob is not locked by alice's failures...
        r = client.post(
            "/auth/login",
            json={"tenant": tenant, "username": "bob", "password": "correct horse battery"},
        )
        assert r.status_code == 200
        # ...until this address has failed too often for anyone.
        for _ in range(3):
            client.post(
                "/auth/login",
                json={"tenant": tenant, "username": "nobody", "password": "wrong password"},
            )
        r = client.post(
            "/auth/login",
            json={"tenant": tenant, "username": "bob", "password": "correct horse battery"},
        )
        assert r.status_code == 429


@pytest.mark.parametrize(
    "password, status",
    [
        ("x" * 10_000, 422),
        ("", 422),
        ("pass\x00word-long", 401),
        ("ünïcødé-pässwörd-🔑", 401),
    ],
)
def test_hostile_passwords_at_login(
    server: LiveServer, factory: Factory, password: str, status: int
) -> None:
    tenant = factory.tenant()
    factory.user(tenant, "alice")
    with server.http() as client:
        r = client.post(
            "/auth/login", json={"tenant": tenant, "username": "alice", "password": password}
        )
    assert r.status_code == status
    assert set(r.json()) == {"error", "detail"}


def test_unicode_password_round_trip(server: LiveServer, factory: Factory) -> None:
    tenant = factory.tenant()
    factory.user(tenant, "zoe", password="ünïcødé-pässwörd-🔑")
    acct = factory.login(tenant, "zoe", "ünïcødé-pässwörd-🔑")
    assert me(server, headers=acct.headers).json()["username"] == "zoe"


def test_bcrypt_hash_verifies_and_is_rehashed(server: LiveServer, factory: Factory) -> None:
    from passlib.hash import bcrypt

    tenant = factory.tenant()
    factory.user(tenant, "old")
    tenant_id = factory.tenant_ids[tenant]

    async def set_bcrypt(s: Any) -> None:
        async with s.db.tx(tenant_id) as tx:
            user = await tx.users.by_name("old")
            await tx.users.set_password_hash(user.id, bcrypt.hash("legacy password"))

    async def stored_hash(s: Any) -> str:
        async with s.db.tx(tenant_id) as tx:
            return str((await tx.users.by_name("old")).password_hash)

    server.call(set_bcrypt)
    assert server.call(stored_hash).startswith("$2")
    factory.login(tenant, "old", "legacy password")
    assert server.call(stored_hash).startswith("$argon2id$")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"tenant": "t"}',
        b'{"tenant": 1, "username": [], "password": {}}',
    ],
)
def test_malformed_bodies_get_the_error_shape(server: LiveServer, body: bytes) -> None:
    with server.http() as client:
        r = client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error" and r.json()["detail"]


def test_router_errors_use_the_error_shape(server: LiveServer) -> None:
    with server.http() as client:
        r = client.get("/no/such/path")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = client.put("/auth/login")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_operations_endpoints(server: LiveServer) -> None:
    with server.http() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["database"] == "ok"
        metrics = client.get("/metrics").text
        assert "switchboard_connections" in metrics and "switchboard_messages_in_total" in metrics
        assert client.get("/docs").status_code == 200
        assert "/auth/login" in client.get("/openapi.json").json()["paths"]


def test_logins_beyond_the_hashing_budget_get_a_fast_503(
    make_server: Any, factory: Factory
) -> None:
    """Admission control: with a budget of 2% of a core, one real-cost login fits and the
    next ones are refused at once (503 + Retry-After) instead of queueing for the CPU."""
    live = make_server(auth={"hash_cpu_share": 0.02, "argon2_memory_kib": 19456})
    tenant = factory.tenant()
    factory.user(tenant, "alice")
    body = {"tenant": tenant, "username": "alice", "password": "correct horse battery"}
    with live.http() as client:
        first = client.post("/auth/login", json=body)
        shed = [client.post("/auth/login", json=body) for _ in range(5)]
        metrics = client.get("/metrics").text
    assert first.status_code == 200
    assert {r.status_code for r in shed} == {503}
    assert all(int(r.headers["retry-after"]) >= 1 for r in shed)
    assert shed[0].json()["error"] == "unavailable"
    shed_total = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("switchboard_logins_shed_total")
    )
    assert shed_total >= 5  # counted (the registry is shared by this test process)


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if fields.get("PPid", "").strip() == str(pid):
                found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (whoever adopted it may not have reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sched_policy(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[38])


@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_hashing_runs_in_idle_priority_processes_that_end_with_their_server(
    database_url: str, tmp_path: Path, factory: Factory, how: str
) -> None:
    """Hashes run in their own processes (a hashing thread would share the event loop's
    GIL) at SCHED_IDLE; they go when the server goes, however it goes."""
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    worker = Worker(database_url, None, tmp_path).start()
    try:
        assert worker.proc is not None
        r = httpx.post(
            f"{worker.base_url}/auth/login",
            json={"tenant": tenant, "username": "alice", "password": password},
        )
        assert r.status_code == 200
        hashing = [p for p in _children(worker.proc.pid) if _sched_policy(p) == SCHED_IDLE]
        assert hashing  # started by the login
        (worker.terminate if how == "terminate" else worker.kill)()
        deadline = time.monotonic() + 10
        while any(map(_alive, hashing)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(_alive, hashing))
    finally:
        worker.stop()


def test_a_dead_hashing_process_costs_one_retry_not_every_login(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    """The OOM killer (or anyone) kills the hashing process: the login caught in it gets a
    503 with Retry-After, and the next one gets a fresh process."""
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    worker = Worker(database_url, None, tmp_path).start()
    body = {"tenant": tenant, "username": "alice", "password": password}
    try:
        assert worker.proc is not None
        with httpx.Client(base_url=worker.base_url) as client:
            assert client.post("/auth/login", json=body).status_code == 200
            for pid in _children(worker.proc.pid):
                if _sched_policy(pid) == SCHED_IDLE:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            caught = client.post("/auth/login", json=body)
            after = [client.post("/auth/login", json=body).status_code for _ in range(3)]
        assert caught.status_code in (200, 503)  # 503 when it met the broken pool
        if caught.status_code == 503:
            assert caught.json()["error"] == "unavailable" and caught.headers["retry-after"]
        assert after == [200, 200, 200]
    finally:
        worker.stop()
