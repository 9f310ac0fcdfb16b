"""In-process broker: one worker, no network. Delivery is synchronous and in publish order."""

from __future__ import annotations

from collections import Counter, defaultdict

from api.broker.base import Broker, Handler, Reconnected


class MemoryBroker(Broker):
    name = "memory"

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._channels: set[str] = set()
        self._presence: defaultdict[str, Counter[str]] = defaultdict(Counter)

    async def start(self, handler: Handler, on_reconnect: Reconnected | None = None) -> None:
        self._handler = handler

    async def stop(self) -> None:
        self._handler = None
        self._channels.clear()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: str) -> None:
        if self._handler is not None and channel in self._channels:
            self._handler(channel, payload)

    async def presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        counts = self._presence[key]
        counts[user] += delta
        mine = counts[user]
        if mine <= 0:
            del counts[user]
        online = len(counts)
        if not counts:
            del self._presence[key]
        return max(mine, 0), online

    async def presence(self, key: str) -> dict[str, int]:
        return dict(self._presence.get(key, {}))
