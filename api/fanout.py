"""A room's fan-out in this process: its members and the ordering of its seq stream.

Pure bookkeeping, no I/O: the hub feeds it broker payloads and, when a seq jumps, reads the
missing range from Postgres and feeds that too.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from api import events, metrics
from api.protocol import Close

Frames = list[tuple[int, str]]


class HistoryLoader(Protocol):
    async def last_seq(self, tenant_id: int, room_id: int) -> int: ...

    async def frames_between(
        self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> Frames: ...


class Subscriber(Protocol):
    """A WebSocket connection or an SSE stream."""

    tenant_id: int
    user_id: int
    username: str
    session_id: uuid.UUID
    counts_for_presence: bool
    ref: str  # this subscriber, unique across workers (a signal skips its sender)

    def push(self, seq: int, text: str) -> None: ...

    def offer(self, text: str) -> None:
        """An ephemeral frame (a signal): dropped, not queued, when the subscriber is
        behind."""

    async def push_wait(self, seq: int, text: str) -> None: ...

    def close_soon(self, close: Close) -> None: ...

    def removed_from(self, room: str) -> None:
        """The subscriber lost access to `room` (it is already out of the fan-out)."""


@dataclass(eq=False, slots=True)
class RoomFanout:
    """One room's live members in this process, and its place in the room's seq stream:
    messages are delivered strictly in seq order, later ones held until a gap is filled."""

    tenant_id: int
    room_id: int
    name: str
    channel: str
    # member -> None when live, or the frames buffered while its join replays history
    members: dict[Subscriber, Frames | None] = field(default_factory=dict)
    delivered: int = -1
    held: dict[int, str] = field(default_factory=dict)
    early: list[str] | None = field(default_factory=list)  # events before init finished
    ready: asyncio.Future[None] | None = None
    gap_task: asyncio.Task[None] | None = None
    # the latest delivered messages, contiguous up to `delivered` (None: no cache), and a
    # count of the times an edit or delete emptied it
    recent: deque[tuple[int, str]] | None = None
    recent_epoch: int = 0

    def accept(self, payload: str) -> bool:
        """Deliver a broker payload in order. True when a message was held behind a gap and
        no repair is running yet (the caller starts one)."""
        event = events.decode(payload)
        if event.kind != events.MESSAGE:
            self.deliver_event(event)
            return False
        seq = event.seq
        if seq <= self.delivered or seq in self.held:
            return False  # already delivered (a replay overlaps live delivery) or held
        if seq != self.delivered + 1:
            self.held[seq] = event.text
            return self.gap_task is None
        self.deliver_next(seq, event.text)
        while self.delivered + 1 in self.held:
            nxt = self.delivered + 1
            self.deliver_next(nxt, self.held.pop(nxt))
        return False

    def deliver_next(self, seq: int, text: str) -> None:
        self.deliver(seq, text)
        self.delivered = seq
        recent = self.recent
        if recent is not None:
            if _unchangeable(text):
                recent.append((seq, text))
            else:  # an edit or delete changed an earlier message: its cached text is stale
                recent.clear()
                self.recent_epoch += 1

    def recent_between(self, after: int, upto: int) -> Frames | None:
        """The messages (after, upto] from memory, or None when the cache does not reach
        back that far. (Later ones may be cached already: a joiner gets those from its
        buffer, so they are not part of its replay.)"""
        recent = self.recent
        if after >= upto:
            return []
        if not recent or recent[0][0] > after + 1 or recent[-1][0] < upto:
            return None
        first = recent[0][0]
        return list(itertools.islice(recent, after + 1 - first, upto + 1 - first))

    def remember(self, frames: Frames, epoch: int) -> None:
        """Messages a replay read from Postgres, kept when they extend the cache backwards
        seamlessly and nothing was edited since the read began (`epoch`): after a restart,
        the first reconnect of a room reads what it missed and the others replay it from
        memory."""
        recent = self.recent
        if recent is None or epoch != self.recent_epoch:
            return
        first = recent[0][0] if recent else self.delivered + 1
        older = [f for f in frames if f[0] < first]
        if older and older[-1][0] == first - 1:
            self.recent = deque(itertools.chain(older, recent), maxlen=recent.maxlen)

    def deliver(self, seq: int, text: str) -> None:
        for sub, pending in self.members.items():
            if pending is None:
                sub.push(seq, text)
            else:
                pending.append((seq, text))
        metrics.MESSAGES_OUT.inc(len(self.members))

    def deliver_event(self, event: events.Event) -> None:
        """Presence to everyone; a signal to everyone live but its sender; a read position
        to its user's connections, or to everyone in a private room."""
        if event.kind == events.SIGNAL:
            sender, frame = events.split_first(event)
            for sub, pending in self.members.items():
                if pending is None and sub.ref != sender:
                    sub.offer(frame)
        elif event.kind == events.READ:
            user, rest = events.split_first(event)
            everyone, _, frame = rest.partition(" ")
            user_id = int(user)
            for sub, pending in self.members.items():
                if everyone == "1" or sub.user_id == user_id:
                    if pending is None:
                        sub.push(0, frame)
                    else:
                        pending.append((0, frame))
        else:
            self.deliver(0, event.text)

    def missing(self) -> tuple[int, int] | None:
        """The gap to read from Postgres, (after, upto), while messages are held."""
        if not self.held:
            return None
        return self.delivered, min(self.held) - 1


def _unchangeable(frame: str) -> bool:
    """A `user` or `broadcast` message, whose stored text only changes by a later `edit` or
    `delete` entry. (Quotes inside a body are escaped, so it cannot fake the key.)"""
    return '"kind":"user"' in frame or '"kind":"broadcast"' in frame
