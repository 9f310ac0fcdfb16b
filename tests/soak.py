"""Soak: many connect/join/send/disconnect cycles beside a crowd of sockets that stay open;
the server's RSS, open descriptors and asyncio tasks must come back to their baseline.

`python -m tests.soak [--cycles 100000] [--open 1000]` against a fresh database on
DATABASE_URL's server; tests/test_soak.py runs a small one in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import websockets
from sqlalchemy.engine import make_url

from tests.processes import Worker

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "soak password 123"
USERS = 8
RSS_SLACK_MIB, FD_SLACK, TASK_SLACK = 48, 16, 8


@dataclass
class Sample:
    rss_mib: float
    fds: int
    tasks: int


def sample(worker: Worker) -> Sample:
    assert worker.proc is not None
    proc = psutil.Process(worker.proc.pid)
    text = httpx.get(f"{worker.base_url}/metrics", timeout=10).text
    found = re.search(r"^switchboard_asyncio_tasks (\S+)$", text, re.M)
    assert found is not None, "the debug metric is missing"
    tasks = int(float(found.group(1)))
    return Sample(proc.memory_info().rss / 2**20, proc.num_fds(), tasks)


async def keep_open(url: str, room: str, ready: asyncio.Event, count: list[int]) -> None:
    async with websockets.connect(url, open_timeout=30, max_queue=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "join", "room": room}))
        await ws.recv()
        count[0] += 1
        if count[0] >= count[1]:
            ready.set()
        async for _ in ws:
            pass


async def cycle(url: str, room: str, n: int) -> None:
    async with websockets.connect(url, open_timeout=30) as ws:
        await ws.recv()  # ready
        await ws.send(json.dumps({"type": "join", "room": room}))
        await ws.send(json.dumps({"type": "send", "room": room, "body": f"c{n}"}))
        while json.loads(await ws.recv())["type"] != "ack":
            pass


async def soak(
    worker: Worker, tokens: list[str], cycles: int, open_count: int
) -> dict[str, object]:
    urls = [f"{worker.ws_url}/ws?token={t}" for t in tokens]
    ready, count = asyncio.Event(), [0, open_count]
    crowd = [
        asyncio.ensure_future(keep_open(urls[i % len(urls)], "idle", ready, count))
        for i in range(open_count)
    ]
    await asyncio.wait_for(ready.wait(), 300)
    await asyncio.sleep(2)
    before = sample(worker)
    started, done = time.monotonic(), [0]

    async def churn(worker_index: int) -> None:
        while done[0] < cycles:
            done[0] += 1
            await cycle(urls[(worker_index + done[0]) % len(urls)], "churn", done[0])

    await asyncio.gather(*(churn(i) for i in range(32)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(5)  # closes complete, queues drain
    after = sample(worker)
    for task in crowd:
        task.cancel()
    await asyncio.gather(*crowd, return_exceptions=True)
    return {
        "cycles": done[0],
        "open": open_count,
        "seconds": round(elapsed, 1),
        "before": before.__dict__,
        "after": after.__dict__,
        "ok": after.rss_mib <= before.rss_mib + RSS_SLACK_MIB
        and after.fds <= before.fds + FD_SLACK
        and after.tasks <= before.tasks + TASK_SLACK,
    }


def run(database_url: str, cycles: int, open_count: int, work: Path) -> dict[str, object]:
    """A fresh database beside DATABASE_URL's, one `switchboard serve`, the soak, cleanup."""
    name = f"switchboard_soak_{secrets.token_hex(3)}"
    admin = make_url(database_url).set(database="postgres", drivername="postgresql")
    admin_dsn = admin.render_as_string(hide_password=False)
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("REDIS_URL", None)
    cli = [sys.executable, "-m", "api.cli"]
    worker = Worker(
        url,
        None,
        work,
        SWITCHBOARD_LIMITS__SOCKETS_PER_USER=str(open_count + 100),
        SWITCHBOARD_SERVER__ACCESS_LOG="false",
    )
    try:
        subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        subprocess.run(
            [*cli, "create-tenant", "soak"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        for i in range(USERS):
            subprocess.run(
                [*cli, "create-user", "--tenant", "soak", f"u{i}", "--password-stdin"],
                input=PASSWORD,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        worker.start()
        with httpx.Client(base_url=worker.base_url, timeout=30) as http:
            tokens = []
            for i in range(USERS):
                r = http.post(
                    "/auth/login",
                    json={"tenant": "soak", "username": f"u{i}", "password": PASSWORD},
                )
                tokens.append(r.json()["access_token"])
            auth = {"Authorization": f"Bearer {tokens[0]}"}
            for room in ("idle", "churn"):
                http.post("/rooms", json={"name": room}, headers=auth)
        return asyncio.run(soak(worker, tokens, cycles, open_count))
    finally:
        worker.stop()
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=1000)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    with tempfile.TemporaryDirectory() as work:
        result = run(database_url, args.cycles, args.open, Path(work))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
