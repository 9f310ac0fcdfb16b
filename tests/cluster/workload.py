"""The workload: in each of two tenants, two rooms, each with a sender and a receiver, all
through the load balancer and the Python client (retries with client_msg_id, resume with
`since`). It runs on its own event loop in a thread while the faults happen."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from switchboard_client import Client, PasswordLogin

TENANTS = ("acme", "globex")
ROOMS = ("general", "ops")
PASSWORD = "cluster password 1"
CLIENT_OPTIONS: dict[str, Any] = {
    "backoff_base": 0.2,
    "backoff_cap": 2.0,
    "ping_interval": 2.0,
    "ping_timeout": 3.0,
}


def users() -> dict[str, list[str]]:
    return {t: [f"{kind}-{room}" for room in ROOMS for kind in ("s", "r")] for t in TENANTS}


@dataclass
class Stream:
    tenant: str
    room: str
    acks: dict[str, int] = field(default_factory=dict)  # client_msg_id -> seq
    ack_times: list[float] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)  # seqs, in the order the app got them
    foreign: list[str] = field(default_factory=list)  # bodies from another tenant or room

    @property
    def name(self) -> str:
        return f"{self.tenant}/{self.room}"


class Workload:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.streams = [Stream(t, r) for t in TENANTS for r in ROOMS]
        self.stopping = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.clients: list[Client] = []
        self.tasks: list[asyncio.Future[None]] = []

    def _login(self, tenant: str, user: str) -> PasswordLogin:
        return PasswordLogin(self.base_url, tenant, user, PASSWORD)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)

    async def _start(self) -> None:
        for stream in self.streams:
            token = await self._login(stream.tenant, f"s-{stream.room}")()
            async with httpx.AsyncClient(base_url=self.base_url) as http:
                await http.post(
                    "/rooms",
                    json={"name": stream.room},
                    headers={"authorization": f"Bearer {token}"},
                )
            receiver = Client(
                self.base_url,
                get_token=self._login(stream.tenant, f"r-{stream.room}"),
                **CLIENT_OPTIONS,
            )
            sender = Client(
                self.base_url,
                get_token=self._login(stream.tenant, f"s-{stream.room}"),
                **CLIENT_OPTIONS,
            )
            await receiver.connect()
            await sender.connect()
            self.clients += [receiver, sender]
            inbox = await receiver.join(stream.room, since=0)
            outbox = await sender.join(stream.room, since=0)
            self.tasks.append(asyncio.ensure_future(self._receive(stream, inbox)))
            self.tasks.append(asyncio.ensure_future(self._send(stream, outbox)))

    async def _send(self, stream: Stream, room: Any) -> None:
        i = 0
        while not self.stopping:
            cmid = f"{stream.tenant}-{stream.room}-{i}"
            ack = await room.send(f"{stream.tenant}:{stream.room}:{i}", client_msg_id=cmid)
            stream.acks[cmid] = ack["seq"]
            stream.ack_times.append(time.monotonic())
            i += 1
            await asyncio.sleep(0.05)

    async def _receive(self, stream: Stream, room: Any) -> None:
        async for message in room.messages():
            stream.seen.append(message["seq"])
            if not str(message["body"]).startswith(f"{stream.tenant}:{stream.room}:"):
                stream.foreign.append(str(message["body"]))

    def acked(self) -> int:
        return sum(len(s.acks) for s in self.streams)

    def acked_since(self, moment: float) -> dict[str, int]:
        return {s.name: sum(1 for t in s.ack_times if t >= moment) for s in self.streams}

    def stop(self, last_seqs: Any) -> None:
        """Stop sending, let every send finish, then wait for receivers to reach the end."""

        async def finish() -> None:
            self.stopping = True
            senders = self.tasks[1::2]
            await asyncio.wait_for(asyncio.gather(*senders), 90)
            ends = await last_seqs()
            for _ in range(600):  # up to a minute for the last deliveries
                if all((s.seen[-1] if s.seen else 0) >= ends[s.name] for s in self.streams):
                    break
                await asyncio.sleep(0.1)
            for task in self.tasks[0::2]:
                task.cancel()
            for client in self.clients:
                await client.close()

        asyncio.run_coroutine_threadsafe(finish(), self.loop).result(180)
        self.loop.call_soon_threadsafe(self.loop.stop)
