"""The broker seam: pub/sub of already-encoded text, plus presence counts.

The hub subscribes per room on its first local member (reference-counted by the hub) and
per tenant for broadcasts and revocations; payloads are opaque strings to the broker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

Handler = Callable[[str, str], None]
Reconnected = Callable[[], Awaitable[None]]


class Broker(ABC):
    name = "broker"

    @abstractmethod
    async def start(self, handler: Handler, on_reconnect: Reconnected | None = None) -> None:
        """Begin delivering messages of subscribed channels to `handler(channel, payload)`.
        `on_reconnect` runs after a lost connection is back (messages may have been missed)."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def subscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, payload: str) -> None: ...

    async def publish_many(self, items: list[tuple[str, str]]) -> None:
        """Publish in order; a broker may send them in one round trip."""
        for channel, payload in items:
            await self.publish(channel, payload)

    @abstractmethod
    async def presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        """Add `delta` connections of `user` to `key`; return (user's connections, users online)."""

    @abstractmethod
    async def presence(self, key: str) -> dict[str, int]:
        """user -> open connections, across every worker."""

    async def ping(self) -> bool:
        return True
