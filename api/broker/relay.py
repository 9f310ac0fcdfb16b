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
from typing import Any

import asyncpg

from api import events
from api.broker.base import Broker, Handler, Reconnected

log = logging.getLogger("switchboard.relay")
CHANNEL = "switchboard_relay"

Notify = Callable[[str], Awaitable[None]]


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
        tenant_id = channel.split(":")[1]
        event = events.decode(payload)
        if event.kind == events.MESSAGE:
            room_id = channel.rsplit(":", 1)[1]
            await self._notify(f"m {tenant_id} {room_id} {event.seq}")
        elif event.kind == events.BROADCAST:
            await self._notify(f"b {tenant_id} {json.loads(event.text)['id']}")

    async def presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        return 0, 0

    async def presence(self, key: str) -> dict[str, int]:
        return {}  # the server's sockets are not visible from here


Resolve = Callable[[str], Awaitable[None]]


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
        task = asyncio.ensure_future(self._resolve(payload))
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
            await asyncio.sleep(1)


def _set_on_call(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()
