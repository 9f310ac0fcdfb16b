"""Real processes for scale-out tests: `switchboard serve` workers, and Redis and Postgres
servers owned by the test (so that killing them never touches the machine's own)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    base_url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60
) -> None:
    """Poll /readyz until a `switchboard serve` answers 200; fail with its log if it dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve not ready: {log.read_text()[-3000:]}")


class RedisProcess:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Worker:
    """One `switchboard serve` process on its own port."""

    def __init__(
        self, database_url: str, redis_url: str | None, log_dir: Path, **settings: str
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log = log_dir / f"worker-{self.port}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "DATABASE_URL", "SWITCHBOARD_JWT_SECRET")
        }
        env.update(
            {
                "DATABASE_URL": database_url,
                "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
                "SWITCHBOARD_AUTH__ARGON2_MEMORY_KIB": "1024",
                "SWITCHBOARD_AUTH__ARGON2_TIME_COST": "1",
                "SWITCHBOARD_LIMITS__MESSAGES_PER_SECOND": "1000",
                "SWITCHBOARD_LIMITS__MESSAGE_BURST": "1000",
                "SWITCHBOARD_BROKER__GAP_WAIT_MS": "100",
                "PYTHONUNBUFFERED": "1",
                **settings,
            }
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> Worker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), *extra],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 60) -> None:
        assert self.proc is not None
        wait_ready(self.base_url, self.proc, self.log, seconds)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
