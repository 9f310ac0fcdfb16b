"""Test helpers: a live uvicorn server on a real socket, WebSocket and HTTP helpers."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

from api.app import create_app, server_options
from api.services import Services
from api.settings import Settings

TEST_SECRET = "test-secret-" + "x" * 40
ORIGIN = "http://app.example"


async def tenant_with_room(conn: Any) -> tuple[int, int, int]:
    """On a raw asyncpg connection: a fresh tenant with user `ann` and room `r`, as
    (tenant id, room id, user id)."""
    slug = f"raw-{secrets.token_hex(4)}"
    tenant: int = await conn.fetchval(
        "INSERT INTO tenant (slug, name) VALUES ($1, $1) RETURNING id", slug
    )
    user: int = await conn.fetchval(
        "INSERT INTO app_user (tenant_id, username, password_hash) "
        "VALUES ($1, 'ann', 'x') RETURNING id",
        tenant,
    )
    room: int = await conn.fetchval(
        "INSERT INTO room (tenant_id, name) VALUES ($1, 'r') RETURNING id", tenant
    )
    return tenant, room, user


def settings_for(database_url: str, **sections: dict[str, Any]) -> Settings:
    base: dict[str, dict[str, Any]] = {
        "database": {"url": database_url, "pool_size": 5, "max_overflow": 5},
        "auth": {"jwt_secret": TEST_SECRET, "argon2_memory_kib": 1024, "argon2_time_cost": 1},
        "http": {"allowed_origins": [ORIGIN]},
        "limits": {"messages_per_second": 1000.0, "message_burst": 1000},
        "broker": {"url": ""},
        "ws": {"ping_interval": 0, "ping_timeout": 0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Settings(**base)  # type: ignore[arg-type]


class LiveServer:
    """uvicorn serving create_app(settings) on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, sndbuf: int | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            lifespan="on",
            **server_options(settings),
        )
        self.server = uvicorn.Server(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sndbuf:  # inherited by accepted sockets: loopback autotuning would hide backpressure
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        tls = settings.server.tls
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def call(self, fn: Callable[[Services], Coroutine[Any, Any, Any]], timeout: float = 30) -> Any:
        """Run `fn(services)` on the server's event loop (where its engine lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(self.services), self.loop).result(timeout)

    def http(self, **kw: Any) -> httpx.Client:
        kw.setdefault("timeout", 10)
        return httpx.Client(base_url=self.base_url, **kw)

    def ws(self, path: str = "/ws", **kw: Any) -> ClientConnection:
        kw.setdefault("open_timeout", 10)
        kw.setdefault("close_timeout", 5)
        conn: ClientConnection = connect(self.ws_url + path, **kw)
        return conn


def eventually(check: Callable[[], bool], timeout: float = 10, every: float = 0.05) -> None:
    """Poll `check` until it holds; fail after `timeout`. Tests wait for a state this way,
    never with a fixed sleep before an assertion."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, str), f"expected a text frame, got {data!r}"
    frame: dict[str, Any] = json.loads(data)
    return frame


def recv_type(ws: ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of `kind`, skipping others (presence, say)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = recv(ws, max(deadline - time.monotonic(), 0.01))
        if frame["type"] == kind:
            return frame


def send(ws: ClientConnection, **frame: Any) -> None:
    ws.send(json.dumps(frame))


def close_of(ws: ClientConnection, timeout: float = 5) -> tuple[int | None, str | None]:
    """Read until the server closes; return (code, reason) of its close frame."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, None)
    except TimeoutError:
        pass
    raise AssertionError("the server did not close the socket")


@contextmanager
def joined(
    server: LiveServer, acct: Any, room: str = "general", **extra: Any
) -> Iterator[ClientConnection]:
    with server.ws(f"/ws?token={acct.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        send(ws, type="join", room=room, **extra)
        frame = recv(ws)
        assert frame["type"] == "joined", frame
        yield ws
