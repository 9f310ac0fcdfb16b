"""Start, watch and stop the servers under test, each its own process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "b" * 40
UVICORN_WS = [
    "--ws",
    "websockets-sansio",
    "--ws-per-message-deflate",
    "false",
    "--log-level",
    "warning",
]
# Only limits are raised for Switchboard; every other setting is its default.
SWITCHBOARD_LIMITS = {
    "SWITCHBOARD_LIMITS__MESSAGES_PER_SECOND": "1000000000",
    "SWITCHBOARD_LIMITS__MESSAGE_BURST": "1000000000",
    "SWITCHBOARD_LIMITS__SOCKETS_PER_USER": "100000",
    "SWITCHBOARD_LIMITS__LOGIN_FAILURES_PER_ADDRESS": "1000000",
    "SWITCHBOARD_LIMITS__SIGNALS_PER_SECOND": "1000000000",
    "SWITCHBOARD_LIMITS__SIGNAL_BURST": "1000000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Database:
    """A fresh database for one bench run: on DATABASE_URL's server, else embedded."""

    def __init__(self) -> None:
        server = os.environ.get("DATABASE_URL")
        if not server:
            from api.embedded import start_embedded_postgres

            server = start_embedded_postgres(ROOT / ".switchboard" / "bench")
        base = make_url(server)
        self.name = f"switchboard_bench_{secrets.token_hex(3)}"
        self.admin = _dsn(base.set(database="postgres"))
        self.url = base.set(database=self.name).render_as_string(hide_password=False)
        self.dsn = _dsn(base.set(database=self.name))

    def create(self) -> Database:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        from api.cli import run_migrations
        from api.settings import Settings

        run_migrations(Settings(database={"url": self.url}))
        return self

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def _dsn(url: Any) -> str:
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


class Server:
    """One server process; `usage()` samples its CPU % and RSS (children included)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        ready_path: str | None = "/healthz",
        start_timeout: float = 60.0,
    ) -> None:
        self.name, self.argv, self.port, self.ready_path = name, argv, port, ready_path
        self.start_timeout = start_timeout
        self.probe_timeout = 1.0  # a storm of sockets queues the probe behind them: raise it
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ROOT / ".switchboard" / f"bench-{name}.log"

    def start(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_fd_limit,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if self.ready_path is None:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
                elif (
                    httpx.get(
                        f"http://127.0.0.1:{self.port}{self.ready_path}",
                        timeout=self.probe_timeout,
                    ).status_code
                    == 200
                ):
                    return self
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def processes(self) -> list[psutil.Process]:
        assert self.proc is not None
        parent = psutil.Process(self.proc.pid)
        return [parent, *parent.children(recursive=True)]

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self.processes())

    @contextmanager
    def usage(self) -> Any:
        """Measure CPU % (of one core) and peak RSS over a `with` block."""
        procs = self.processes()
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        t0 = time.monotonic()
        sample: dict[str, float] = {}
        yield sample
        elapsed = time.monotonic() - t0
        cpu1 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        sample["cpu_percent"] = round(100 * (cpu1 - cpu0) / max(elapsed, 1e-6), 1)
        sample["rss_mib"] = round(self.rss() / 2**20, 1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            for p in reversed(self.processes()):
                p.kill()
            self.proc.wait(5)


def switchboard(db: Database, wrapper: list[str] | None = None) -> Server:
    """`wrapper`: a command to run the server under (valgrind, for instruction counts)."""
    port = free_port()
    env = {"DATABASE_URL": db.url, "SWITCHBOARD_JWT_SECRET": SECRET, **SWITCHBOARD_LIMITS}
    argv = [*(wrapper or []), sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    server = Server("switchboard", argv, env, port)
    server.env.pop("REDIS_URL", None)  # one process, in-process broker
    return server


def peer(name: str, db: Database | None = None) -> Server:
    port = free_port()
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *UVICORN_WS,
    ]
    if name == "naive":
        return Server(name, [*uvicorn, "bench.peers.naive:app"], {}, port, None)
    if name == "socketio":
        return Server(name, [*uvicorn, "bench.peers.socketio_peer:app"], {}, port, None)
    if name == "naive-persist":
        assert db is not None
        return Server(
            name, [*uvicorn, "bench.peers.naive_persist:app"], {"DATABASE_URL": db.url}, port, None
        )
    if name == "websockets":
        return Server(
            name, [sys.executable, "-m", "bench.peers.websockets_peer", str(port)], {}, port, None
        )
    raise ValueError(name)


def make_accounts(
    db: Database, users: int, *, tenant: str = "bench", real_hash_cost: bool = False
) -> tuple[int, list[str]]:
    """Tenant `bench` with users u0..u{n-1}; returns (tenant_id, usernames). Set-up hashes use
    a low argon2 cost unless `real_hash_cost` (the login scenario measures the real one)."""
    from api.services import Services
    from api.settings import Settings

    auth_settings: dict[str, Any] = {"jwt_secret": SECRET}
    if not real_hash_cost:
        auth_settings.update(argon2_memory_kib=1024, argon2_time_cost=1)
    settings = Settings(database={"url": db.url}, auth=auth_settings)

    async def main() -> tuple[int, list[str]]:
        services = Services.build(settings, pool_size=2, max_overflow=0)
        accounts = services.accounts
        try:
            tenant_id = await accounts.tenant_id(tenant) or await accounts.create_tenant(
                tenant, tenant
            )
            password_hash = await services.hasher.hash(PASSWORD)
            names = [f"u{i}" for i in range(users)]
            async with services.db.tx(tenant_id) as tx:  # one transaction for every user
                for name in names:
                    if await tx.users.by_name(name) is None:
                        await tx.users.create(name, password_hash, "admin")
            return tenant_id, names
        finally:
            await services.stop()

    return asyncio.run(main())


PASSWORD = "bench password 123"


def login(port: int, username: str, tenant: str = "bench") -> str:
    r = httpx.post(
        f"http://127.0.0.1:{port}/auth/login",
        timeout=30,
        json={"tenant": tenant, "username": username, "password": PASSWORD},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def create_rooms(port: int, token: str, names: list[str]) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        for name in names:
            r = client.post("/rooms", json={"name": name})
            if r.status_code not in (201, 409):
                r.raise_for_status()
