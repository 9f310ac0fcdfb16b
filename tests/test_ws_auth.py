"""WebSocket authentication over a real socket: three modes, every failure is 1008 with
its reason, nothing else reaches an unauthenticated socket, expiry on live sockets."""

from __future__ import annotations

import time
from typing import Any

import jwt

from tests.factories import Factory
from tests.support import ORIGIN, TEST_SECRET, LiveServer, close_of, recv, send


def test_query_token(server: LiveServer, factory: Factory) -> None:
    acct = factory.account(role="admin")
    with server.ws(f"/ws?token={acct.access_token}") as ws:
        ready = recv(ws)
    assert ready["type"] == "ready" and ready["user"] == acct.username
    assert ready["tenant"] == acct.tenant and ready["role"] == "admin"
    assert (
        ready["expires_at"]
        == jwt.decode(acct.access_token, options={"verify_signature": False})["exp"]
    )


def test_cookie_with_allowed_origin(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    headers = {"Cookie": f"session={acct.cookie}"}
    with server.ws(additional_headers=headers, origin=ORIGIN) as ws:
        assert recv(ws)["user"] == acct.username
    with server.ws(additional_headers=headers, origin="http://evil.example") as ws:
        assert close_of(ws) == (1008, "origin_not_allowed")
    with server.ws(additional_headers=headers) as ws:  # no Origin at all
        assert close_of(ws) == (1008, "origin_not_allowed")


def test_first_message_auth(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.ws() as ws:
        send(ws, type="auth", token=acct.access_token)
        assert recv(ws)["type"] == "ready"
    with server.ws() as ws:
        send(ws, type="join", room="general")  # anything but auth first
        assert close_of(ws) == (1008, "invalid_token")
    with server.ws() as ws:
        ws.send("{not json")
        assert close_of(ws) == (1008, "invalid_token")


def test_auth_timeout(make_server: Any) -> None:
    live = make_server(ws={"auth_timeout": 0.3})
    with live.ws() as ws:
        started = time.monotonic()
        assert close_of(ws) == (1008, "auth_timeout")
        assert time.monotonic() - started < 3


def test_failure_reasons(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    claims = jwt.decode(acct.access_token, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 600}, TEST_SECRET, "HS256")
    wrong_key = jwt.encode(claims, "k" * 48, "HS256")
    cases = [
        (f"/ws?token={expired}", "expired_token"),
        (f"/ws?token={wrong_key}", "invalid_token"),
        ("/ws?token=garbage", "invalid_token"),
        ("/ws?ticket=garbage", "invalid_token"),
        ("/ws?ticket=1.00000000-0000-0000-0000-000000000000.nope", "invalid_token"),
    ]
    for path, reason in cases:
        with server.ws(path) as ws:
            assert close_of(ws) == (1008, reason), path
    with server.ws() as ws:
        send(ws, type="auth", token=expired)
        assert close_of(ws) == (1008, "expired_token")
    with server.http() as client:
        client.post("/auth/logout", headers=acct.headers)
    with server.ws(f"/ws?token={acct.access_token}") as ws:
        assert close_of(ws) == (1008, "revoked")


def test_nothing_but_close_reaches_unauthenticated(server: LiveServer) -> None:
    from websockets.exceptions import ConnectionClosed

    with server.ws("/ws?token=bad") as ws:
        frames = []
        try:
            while True:
                frames.append(ws.recv(timeout=5))
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1008
    assert frames == []


def test_expiry_closes_live_socket_unless_reauthenticated(
    make_server: Any, factory: Factory
) -> None:
    live = make_server(auth={"access_ttl_seconds": 2, "leeway_seconds": 0})
    acct = factory.account(server=live)
    with live.ws(f"/ws?token={acct.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        started = time.monotonic()
        assert close_of(ws, timeout=6) == (1008, "expired_token")
        assert time.monotonic() - started < 4
    acct = factory.login(acct.tenant, acct.username, server=live)  # a new session
    with live.ws(f"/ws?token={acct.access_token}") as ws:
        first = recv(ws)
        time.sleep(1.2)
        fresh = factory.login(acct.tenant, acct.username, server=live)
        send(ws, type="auth", token=fresh.access_token)
        again = recv(ws)
        assert again["type"] == "ready" and again["expires_at"] > first["expires_at"]
        time.sleep(1.3)  # past the first token's expiry: still open
        send(ws, type="ping")
        assert recv(ws) == {"type": "pong"}


def test_ticket_and_revocation_close_live_socket(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.http() as client:
        ticket = client.post("/auth/ws-ticket", headers=acct.headers).json()["ticket"]
    with server.ws(f"/ws?ticket={ticket}") as ws:
        assert recv(ws)["type"] == "ready"
        with server.http() as client:
            assert client.post("/auth/logout", headers=acct.headers).status_code == 204
        started = time.monotonic()
        assert close_of(ws) == (1008, "revoked")
        assert time.monotonic() - started < 1.0


def test_refresh_reuse_closes_sockets(server: LiveServer, factory: Factory) -> None:
    acct = factory.account()
    with server.ws(f"/ws?token={acct.access_token}") as ws:
        recv(ws)
        with server.http() as client:
            assert (
                client.post("/auth/refresh", json={"refresh_token": acct.refresh_token}).status_code
                == 200
            )
            assert (
                client.post("/auth/refresh", json={"refresh_token": acct.refresh_token}).status_code
                == 401
            )
        assert close_of(ws) == (1008, "revoked")


def test_sockets_per_user_limit(make_server: Any, factory: Factory) -> None:
    live = make_server(limits={"sockets_per_user": 2})
    acct = factory.account(server=live)
    url = f"/ws?token={acct.access_token}"
    with live.ws(url) as a, live.ws(url) as b:
        recv(a)
        recv(b)
        with live.ws(url) as c:
            assert close_of(c) == (1008, "too_many_sockets")


def test_sockets_beyond_max_opening_are_shed_with_1013(make_server: Any, factory: Factory) -> None:
    """Admission control: a socket still authenticating holds a place; past
    `ws.max_opening` a new one is closed at once with 1013 `overloaded` (its client retries)."""
    live = make_server(ws={"max_opening": 1, "auth_timeout": 5})
    acct = factory.account(server=live)
    with live.ws("/ws") as waiting:  # opened, no credential yet: it holds the one place
        with live.ws("/ws") as extra:
            assert close_of(extra) == (1013, "overloaded")
        send(waiting, type="auth", token=acct.access_token)
        assert recv(waiting)["type"] == "ready"
    with live.ws(f"/ws?token={acct.access_token}") as after:  # the place is free again
        assert recv(after)["type"] == "ready"
