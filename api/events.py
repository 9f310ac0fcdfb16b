"""What travels on the broker, as compact text: a one-letter kind, then its fields.

Room channels carry `m <seq> <frame>` (a stored message, frame already encoded for clients),
`p <frame>` (presence), `g <connection ref> <frame>` (a signal, for everyone but the sending
connection) and `r <user id> <0|1> <frame>` (a read position: for that user's connections,
or for every member when 1). Tenant channels carry `b <frame>` (broadcast),
`s <session id>` (session revoked), `u <user id>` (user disabled) and
`k <user id> <room id>` (removed from a private room). The frame is encoded
once by the publisher and forwarded to sockets untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MESSAGE, PRESENCE, BROADCAST, REVOKE_SESSION, REVOKE_USER = "m", "p", "b", "s", "u"
REMOVED = "k"  # `k <user id> <room id>`: a member was removed from a private room
SIGNAL, READ = "g", "r"


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    seq: int = 0
    text: str = ""


def message_event(seq: int, frame: str) -> str:
    return f"{MESSAGE} {seq} {frame}"


def simple_event(kind: str, text: str) -> str:
    return f"{kind} {text}"


def removed_event(user_id: int, room_id: int) -> str:
    return f"{REMOVED} {user_id} {room_id}"


def signal_event(sender_ref: str, frame: str) -> str:
    return f"{SIGNAL} {sender_ref} {frame}"


def read_event(user_id: int, to_everyone: bool, frame: str) -> str:
    return f"{READ} {user_id} {int(to_everyone)} {frame}"


def split_first(event: Event) -> tuple[str, str]:
    """A signal's (sender ref, frame), or the (user id, rest) of a read event."""
    head, _, frame = event.text.partition(" ")
    return head, frame


def removed_of(event: Event) -> tuple[int, int]:
    """(user id, room id) of a REMOVED event."""
    user_id, room_id = event.text.split()
    return int(user_id), int(room_id)


def decode(payload: str) -> Event:
    kind, _, rest = payload.partition(" ")
    if kind == MESSAGE:
        seq, _, frame = rest.partition(" ")
        return Event(MESSAGE, int(seq), frame)
    return Event(kind, 0, rest)


# How services that only announce tenant events (revocations) reach the broker.
PublishTenantEvent = Callable[[int, str], Awaitable[None]]
