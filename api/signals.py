"""Signals: ephemeral events (typing, cursors) for a room's other connections.

Never stored and never a database round trip: the sender's socket has joined the room (its
access was checked then), so a signal is a size check, a token, and one broker publish.
"""

from __future__ import annotations

from typing import Any

from api import events
from api.broker import Broker, room_channel
from api.errors import BodyInvalid, RateLimited
from api.principal import Principal
from api.protocol import server as frames
from api.ratelimit import TokenBuckets
from api.repository import RoomRow
from api.settings import Settings


class SignalService:
    def __init__(self, broker: Broker, settings: Settings) -> None:
        self.broker = broker
        self.max_bytes = settings.limits.signal_bytes
        self.buckets = TokenBuckets(
            settings.limits.signals_per_second, settings.limits.signal_burst
        )

    async def send(self, p: Principal, room: RoomRow, sender_ref: str, data: Any) -> None:
        data_json = frames.encode(data)
        size = len(data_json.encode())
        if size > self.max_bytes:
            raise BodyInvalid(f"signal data is {size} bytes; the limit is {self.max_bytes}")
        wait = self.buckets.take((p.tenant_id, p.user_id))
        if wait > 0:
            raise RateLimited(wait, "too many signals; slow down")
        frame = frames.signal(room.name, p.username, data_json)
        await self.broker.publish(
            room_channel(room.tenant_id, room.id), events.signal_event(sender_ref, frame)
        )
