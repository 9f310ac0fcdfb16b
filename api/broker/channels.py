"""Broker channel names, built and parsed here only.

`t:<tenant id>:room:<room id>` carries one room's messages and presence;
`t:<tenant id>:all` carries what concerns the whole tenant (broadcasts, revocations).
"""

from __future__ import annotations

from dataclasses import dataclass

_ROOM = "room"
_ALL = "all"


@dataclass(frozen=True, slots=True)
class Channel:
    tenant_id: int
    room_id: int | None  # None: the tenant-wide channel


def room_channel(tenant_id: int, room_id: int) -> str:
    return f"t:{tenant_id}:{_ROOM}:{room_id}"


def tenant_channel(tenant_id: int) -> str:
    return f"t:{tenant_id}:{_ALL}"


def parse_channel(name: str) -> Channel | None:
    """The channel's tenant and room, or None for a name that is not ours."""
    parts = name.split(":")
    try:
        if len(parts) == 3 and parts[0] == "t" and parts[2] == _ALL:
            return Channel(int(parts[1]), None)
        if len(parts) == 4 and parts[0] == "t" and parts[2] == _ROOM:
            return Channel(int(parts[1]), int(parts[3]))
    except ValueError:
        return None
    return None
