"""The bed's servers: PostgreSQL and Redis hosts, two app hosts and the HAProxy host."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.cluster.net import Host, Network
from tests.support import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
APP_PORT, LB_PORT, REDIS_PORT, PG_PORT = 8000, 8080, 6379, 5432


def wait_port(address: str, port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{address}:{port} did not open")


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are not installed")
    return found[-1]


class Postgres:
    def __init__(self, host: Host, work: Path) -> None:
        self.host = host
        # Its own directory: the server runs as the postgres user, which cannot enter the
        # root-only temporary directories of the test run.
        self.home = Path(tempfile.mkdtemp(prefix="sbcluster-pg-"))
        self.home.chmod(0o755)
        self.data = self.home / "pgdata"
        self.log = work / "postgres.log"
        self.url = f"postgresql://postgres@{host.address}:{PG_PORT}/switchboard"
        self.admin_url = f"postgresql://postgres@{host.address}:{PG_PORT}/postgres"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        os.chown(self.data, *_postgres_ids())
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")

    def start(self) -> None:
        self.host.popen(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                pg_bin("postgres"),
                "-D",
                str(self.data),
                "-c",
                f"listen_addresses={self.host.address}",
                "-c",
                f"unix_socket_directories={self.data}",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=off",
            ],
            log=self.log,
        )
        wait_port(self.host.address, PG_PORT)
        time.sleep(0.5)  # accepting TCP a moment before it accepts queries

    def restart(self) -> None:
        self.host.kill_all(signal.SIGINT)  # fast shutdown
        self.start()

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


class Redis:
    """redis-server on the host's loopback, reached through a relay that can add latency."""

    def __init__(self, host: Host, work: Path) -> None:
        self.host = host
        self.work = work
        self.url = f"redis://{host.address}:{REDIS_PORT}/0"
        self.server: subprocess.Popen[bytes] | None = None
        self.relay: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.relay = self.host.popen(
            [
                sys.executable,
                "-m",
                "tests.cluster.relay",
                self.host.address,
                str(REDIS_PORT),
                str(REDIS_PORT + 1),
            ],
            log=self.work / "relay.log",
            cwd=ROOT,
        )
        self.start_server()
        wait_port(self.host.address, REDIS_PORT)

    def start_server(self) -> None:
        self.server = self.host.popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(REDIS_PORT + 1),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work),
            ],
            log=self.work / "redis.log",
        )

    def slow(self, on: bool) -> None:
        """200 ms each way between Redis and everyone, plus 5 % packet loss."""
        assert self.relay is not None
        os.killpg(self.relay.pid, signal.SIGUSR1 if on else signal.SIGUSR2)
        self.host.lose(REDIS_PORT, 0.05, on=on)

    def restart(self) -> None:
        assert self.server is not None
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(10)
        self.host.processes.remove(self.server)
        self.start_server()


class App:
    """`switchboard serve --workers 2` on its own host."""

    def __init__(self, host: Host, work: Path, pg: Postgres, redis: Redis) -> None:
        self.host = host
        self.work = work
        self.base_url = f"http://{host.address}:{APP_PORT}"
        self.env = {
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
            "SWITCHBOARD_AUTH__ARGON2_MEMORY_KIB": "1024",
            "SWITCHBOARD_AUTH__ARGON2_TIME_COST": "1",
            "SWITCHBOARD_LIMITS__MESSAGES_PER_SECOND": "1000",
            "SWITCHBOARD_LIMITS__MESSAGE_BURST": "1000",
            "SWITCHBOARD_SERVER__ACCESS_LOG": "false",
            "SWITCHBOARD_SERVER__DATA_DIR": str(work / f"data-{host.name}"),
            "SWITCHBOARD_SERVER__GRACEFUL_SHUTDOWN_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
        }
        self.main: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.main = self.host.popen(
            [
                sys.executable,
                "-m",
                "api.cli",
                "serve",
                "--host",
                self.host.address,
                "--port",
                str(APP_PORT),
                "--workers",
                "2",
            ],
            log=self.work / f"{self.host.name}.log",
            env=self.env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.main.poll() is None, (self.work / f"{self.host.name}.log").read_text()[
                -2000:
            ]
            time.sleep(0.2)
        raise RuntimeError(f"{self.host.name} did not become ready")

    def kill9(self) -> None:
        self.host.kill_all(signal.SIGKILL)

    def rolling_restart(self) -> None:
        self.host.kill_all(signal.SIGTERM)
        self.start()

    def processes(self) -> list[int]:
        """The pids of this host's serve processes (the supervisor and its workers)."""
        import psutil

        if self.main is None:
            return []
        try:
            parent = psutil.Process(self.main.pid)
            return [p.pid for p in [parent, *parent.children(recursive=True)]]
        except psutil.NoSuchProcess:
            return []


class Balancer:
    def __init__(self, host: Host, work: Path, apps: list[App]) -> None:
        self.host = host
        self.work = work
        self.base_url = f"http://{host.address}:{LB_PORT}"
        servers = "\n".join(
            f"    server {a.host.name} {a.host.address}:{APP_PORT} "
            "check inter 1s fall 2 rise 2 on-marked-down shutdown-sessions"
            for a in apps
        )
        (work / "haproxy.cfg").write_text(f"""
global
    maxconn 4000
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout check 2s
frontend switchboard
    bind {host.address}:{LB_PORT}
    default_backend apps
backend apps
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
{servers}
""")

    def start(self) -> None:
        self.host.popen(
            ["haproxy", "-db", "-f", str(self.work / "haproxy.cfg")], log=self.work / "haproxy.log"
        )
        wait_port(self.host.address, LB_PORT)


def migrate_and_seed(pg: Postgres, tenants: dict[str, list[str]], password: str) -> None:
    """Run from the root namespace (the bridge reaches the database host)."""
    import asyncio

    import asyncpg

    async def create_db() -> None:
        conn = await asyncpg.connect(pg.admin_url)
        await conn.execute("CREATE DATABASE switchboard")
        await conn.close()

    asyncio.run(create_db())
    env = {**os.environ, "DATABASE_URL": pg.url}
    env.pop("REDIS_URL", None)
    cli = [sys.executable, "-m", "api.cli"]
    subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    for tenant, users in tenants.items():
        subprocess.run(
            [*cli, "create-tenant", tenant], env=env, cwd=ROOT, check=True, capture_output=True
        )
        for user in users:
            subprocess.run(
                [*cli, "create-user", "--tenant", tenant, user, "--password-stdin"],
                input=password.encode(),
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )


def build(work: Path) -> tuple[Network, Postgres, Redis, list[App], Balancer]:
    network = Network().create(["db", "redis", "app1", "app2", "lb"])
    pg = Postgres(network["db"], work)
    redis = Redis(network["redis"], work)
    apps = [App(network[n], work, pg, redis) for n in ("app1", "app2")]
    return network, pg, redis, apps, Balancer(network["lb"], work, apps)
