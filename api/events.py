"""What travels on the broker, as compact text: a one-letter kind, then its fields.

Room channels carry `m <seq> <frame>` (a stored message, frame already encoded for clients)
and `p <frame>` (presence). Tenant channels carry `b <frame>` (broadcast),
`s <session id>` (session revoked), `u <user id>` (user disabled) and
`k <user id> <room id>` (removed from a private room). The frame is encoded
once by the publisher and forwarded to sockets untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

MESSAGE, PRESENCE, BROADCAST, REVOKE_SESSION, REVOKE_USER = "m", "p", "b", "s", "u"
REMOVED = "k"  # `k <user id> <room id>`: a member was removed from a private room


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    seq: int = 0
    text: str = ""


def message_event(seq: int, frame: str) -> str:
    return f"{MESSAGE} {seq} {frame}"


def simple_event(kind: str, text: str) -> str:
    return f"{kind} {text}"


def decode(payload: str) -> Event:
    kind, _, rest = payload.partition(" ")
    if kind == MESSAGE:
        seq, _, frame = rest.partition(" ")
        return Event(MESSAGE, int(seq), frame)
    return Event(kind, 0, rest)
