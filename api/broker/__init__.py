"""Message brokers, picked by URL scheme: memory for one process, Redis for many."""

from __future__ import annotations

from api.broker.base import Broker, Handler
from api.broker.channels import Channel, parse_channel, room_channel, tenant_channel
from api.broker.memory import MemoryBroker


def create_broker(url: str) -> Broker:
    if not url or url.startswith("memory"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from api.broker.redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]}")


__all__ = [
    "Broker",
    "Channel",
    "Handler",
    "create_broker",
    "parse_channel",
    "room_channel",
    "tenant_channel",
]
