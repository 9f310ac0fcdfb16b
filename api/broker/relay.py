"""Postgres LISTEN/NOTIFY relay for the in-process broker.

A server on the memory broker keeps its sockets to itself, so `switchboard broadcast` (another
process) cannot publish to them. Instead the CLI publishes through `RelayPublisher`, which
NOTIFYs a reference to what it stored (a room message's seq, a broadcast's id; never the body,
which could exceed NOTIFY's 8 KB). The server's `RelayListener` reads the row back and
publishes it on its own broker, exactly as if it had stored it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from api import events
from api.broker.base import Broker, Handler, Reconnected
from api.broker.channels import parse_channel

log = logging.getLogger("switchboard.relay")
CHANNEL = "switchboard_relay"
RECONNECT_DELAY_SECONDS = 1.0  # after the listening connection is lost

Notify = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RelayReference:
    """What a NOTIFY carries: `m <tenant> <room> <seq>` for a stored room message, or
    `b <tenant> <broadcast id>` for a tenant-wide broadcast."""

    tenant_id: int
    room_id: int | None = None  # with seq: a room message
    seq: int = 0
    broadcast_id: int | None = None

    def encode(self) -> str:
        if self.room_id is not None:
            return f"m {self.tenant_id} {self.room_id} {self.seq}"
        return f"b {self.tenant_id} {self.broadcast_id}"

    @classmethod
    def decode(cls, text: str) -> RelayReference | None:
        kind, *numbers = text.split()
        try:
            ids = [int(n) for n in numbers]
        except ValueError:
            return None
        if kind == "m" and len(ids) == 3:
            return cls(ids[0], room_id=ids[1], seq=ids[2])
        if kind == "b" and len(ids) == 2:
            return cls(ids[0], broadcast_id=ids[1])
        return None


class RelayPublisher(Broker):
    """A publish-only broker: each publish becomes a NOTIFY with a reference."""

    name = "relay"

    def __init__(self, notify: Notify) -> None:
        self._notify = notify

    async def start(self, handler: Handler, on_reconnect: Reconnected | None = None) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        raise NotImplementedError("the relay publisher only publishes")

    async def unsubscribe(self, channel: str) -> None:
        return None

    async def publish(self, channel: str, payload: str) -> None:
        target = parse_channel(channel)
        if target is None:
            return
        event = events.decode(payload)
        reference = None
        if event.kind == events.MESSAGE and target.room_id is not None:
            reference = RelayReference(target.tenant_id, room_id=target.room_id, seq=event.seq)
        elif event.kind == events.BROADCAST:
            broadcast_id = int(json.loads(event.text)["id"])
            reference = RelayReference(target.tenant_id, broadcast_id=broadcast_id)
        if reference is not None:
            await self._notify(reference.encode())

    async def presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        return 0, 0

    async def presence(self, key: str) -> dict[str, int]:
        return {}  # the server's sockets are not visible from here


Resolve = Callable[[RelayReference], Awaitable[None]]


class RelayListener:
    """LISTENs on its own connection and hands each reference to `resolve`; reconnects."""

    def __init__(self, dsn: str, server_settings: dict[str, str], resolve: Resolve) -> None:
        self._dsn = dsn
        self._server_settings = server_settings
        self._resolve = resolve
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        reference = RelayReference.decode(payload)
        if reference is None:
            log.warning("ignoring a malformed relay reference %r", payload[:100])
            return
        task = asyncio.ensure_future(self._resolve(reference))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("relayed event failed", exc_info=task.exception())

    async def _run(self) -> None:
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, server_settings=self._server_settings)
                lost = asyncio.Event()
                conn.add_termination_listener(_set_on_call(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay listener: %s; retrying", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)


def _set_on_call(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()
