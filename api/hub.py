"""This process's subscribers and rooms. The hub never touches the database: it is handed
a HistoryLoader for the two reads it needs (a room's last seq, and a range of frames), which
api.room_history uses for replays, gap repairs and catch-ups.

Delivery path: the broker hands over an encoded frame; the room's fan-out checks it is the
next seq (holding and repairing gaps), then puts the same string on every member's bounded
queue. A member whose queue is full is closed with 1013; nobody waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from api import events, metrics, room_history
from api.broker import Broker, parse_channel, room_channel, tenant_channel
from api.errors import LimitExceeded
from api.fanout import HistoryLoader, RoomFanout, Subscriber
from api.protocol import Close
from api.protocol import server as frames
from api.send_queue import WriteRound
from api.transport import text_frame

log = logging.getLogger("switchboard.hub")
# Told when a user's first socket in a tenant opens (True) or the last one closes (False).
PresenceHook = Callable[[int, str, bool], Awaitable[None]]
UNKNOWN = -1


class Hub:
    def __init__(
        self,
        broker: Broker,
        loader: HistoryLoader,
        *,
        gap_wait: float = 0.15,
        replay_page: int = 500,
        recent_per_room: int = 64,
        sockets_per_user: int = 20,
        on_presence: PresenceHook | None = None,
    ) -> None:
        self.broker = broker
        self.on_presence = on_presence
        self.opening = 0  # sockets accepted and not yet authenticated (admission control)
        self.loader = loader
        self.gap_wait = gap_wait
        self.replay_page = replay_page
        self.recent_per_room = recent_per_room
        self.sockets_per_user = sockets_per_user
        self.write_round = WriteRound(text_frame)  # sockets' writes, once per loop turn
        self.rooms: dict[str, RoomFanout] = {}  # by channel
        self.tenants: dict[int, set[Subscriber]] = {}  # every subscriber of a tenant
        self.joined: dict[Subscriber, set[RoomFanout]] = {}  # each subscriber's rooms
        self._sub_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self.broker.start(self.on_broker_message, self.catch_up)

    async def catch_up(self) -> None:
        """After a broker outage: deliver, from Postgres, whatever each room missed."""
        for fan in list(self.rooms.values()):
            if fan.early is None:  # else still initialising: it reads the last seq itself
                await room_history.catch_up(fan, self.loader, self.replay_page, self.rooms)

    # subscribers -------------------------------------------------------------
    async def register(self, sub: Subscriber) -> None:
        """Count the subscriber in its tenant (broadcasts, revocations, recipients); the
        sockets-per-user limit counts every worker's sockets."""
        if sub.counts_for_presence:
            channel = tenant_channel(sub.tenant_id)
            sockets, _ = await self._presence_change(channel, sub.username, +1)
            if sockets > self.sockets_per_user:
                await self._presence_change(channel, sub.username, -1)
                raise LimitExceeded("too many open sockets for this user")
            if sockets == 1 and self.on_presence is not None:
                self._spawn(self.on_presence(sub.tenant_id, sub.username, True))
        members = self.tenants.get(sub.tenant_id)
        if members is None:
            members = self.tenants[sub.tenant_id] = set()
            await self._subscribe(tenant_channel(sub.tenant_id))
        members.add(sub)

    async def unregister(self, sub: Subscriber) -> None:
        for fan in list(self.joined.get(sub, ())):
            await self.leave(sub, fan)
        if sub.counts_for_presence:
            left, _ = await self._presence_change(tenant_channel(sub.tenant_id), sub.username, -1)
            if left == 0 and self.on_presence is not None:
                self._spawn(self.on_presence(sub.tenant_id, sub.username, False))
        members = self.tenants.get(sub.tenant_id)
        if members is not None:
            members.discard(sub)
            if not members:
                del self.tenants[sub.tenant_id]
                await self._unsubscribe_if_unused(tenant_channel(sub.tenant_id))

    # rooms ---------------------------------------------------------------------
    async def join(
        self,
        sub: Subscriber,
        tenant_id: int,
        room_id: int,
        name: str,
        since: int | None,
        joined_frame: Callable[[int, int], str],
    ) -> RoomFanout:
        """Join, queue `joined`, replay (since, joined seq] (from the room's recent messages
        in memory, or from Postgres), then go live.

        The member is added in buffering mode first, so live frames that arrive during the
        replay wait behind it: no gap and no duplicate at the handoff. A replay that fails
        (the database busy under a reconnect storm) must not leave a member that goes live
        with a hole behind `joined`: the subscriber is closed with 1013 and resumes with
        `since` from what it did receive.
        """
        fan = await self._fanout(tenant_id, room_id, name)
        if sub in fan.members:
            sub.push(0, joined_frame(fan.delivered, await self._online(fan)))
            return fan
        start = fan.delivered
        fan.members[sub] = []
        self.joined.setdefault(sub, set()).add(fan)
        online = await self._presence(fan, sub, +1)
        sub.push(0, joined_frame(start, online))
        try:
            after = since if since is not None else start
            await room_history.replay(fan, sub, self.loader, after, start, self.replay_page)
        except Exception:
            sub.close_soon(Close.OVERLOADED)
            with contextlib.suppress(Exception):
                await self.leave(sub, fan)  # out of the fan-out first, before any await
            raise
        finally:
            pending = fan.members.get(sub)
            if pending is not None:
                fan.members[sub] = None
                for seq, text in pending:
                    sub.push(seq, text)
        return fan

    async def leave(self, sub: Subscriber, fan: RoomFanout) -> None:
        if sub not in fan.members:
            return
        del fan.members[sub]
        rooms = self.joined.get(sub)
        if rooms is not None:
            rooms.discard(fan)
            if not rooms:
                del self.joined[sub]
        if not fan.members and self.rooms.get(fan.channel) is fan:
            del self.rooms[fan.channel]
            if fan.gap_task:
                fan.gap_task.cancel()
            await self._unsubscribe_if_unused(fan.channel)
        await self._presence(fan, sub, -1)

    async def _fanout(self, tenant_id: int, room_id: int, name: str) -> RoomFanout:
        channel = room_channel(tenant_id, room_id)
        fan = self.rooms.get(channel)
        if fan is None:
            fan = RoomFanout(tenant_id, room_id, name, channel)
            if self.recent_per_room > 0:
                fan.recent = deque(maxlen=self.recent_per_room)
            self.rooms[channel] = fan
            fan.ready = asyncio.ensure_future(self._init_fanout(fan))
        assert fan.ready is not None
        await asyncio.shield(fan.ready)
        return fan

    async def _init_fanout(self, fan: RoomFanout) -> None:
        """Subscribe first, then read the room's last seq: anything published in between
        is either <= that seq (dropped as already stored) or after it (delivered)."""
        try:
            await self._subscribe(fan.channel)
            fan.delivered = await self.loader.last_seq(fan.tenant_id, fan.room_id)
        except BaseException:
            if self.rooms.get(fan.channel) is fan:
                del self.rooms[fan.channel]
            await self._unsubscribe_if_unused(fan.channel)
            raise
        early, fan.early = fan.early or [], None
        for payload in early:
            self._on_room_event(fan, payload)

    async def _presence(self, fan: RoomFanout, sub: Subscriber, delta: int) -> int:
        if not sub.counts_for_presence:
            return await self._online(fan)
        mine, online = await self._presence_change(fan.channel, sub.username, delta)
        if (delta > 0 and mine == 1) or (delta < 0 and mine == 0):
            frame = frames.presence(
                fan.name, sub.username, "join" if delta > 0 else "leave", online
            )
            with contextlib.suppress(Exception):
                await self.broker.publish(fan.channel, events.simple_event(events.PRESENCE, frame))
        return online

    async def _presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        """Presence is advisory: while the broker is away, sockets work without it
        (and the broker rewrites this worker's presence when it is back). Unknown counts
        are -1: no first or last socket is announced from them."""
        try:
            return await self.broker.presence_change(key, user, delta)
        except Exception as exc:
            log.warning("presence unavailable: %s", exc)
            return UNKNOWN, 0

    async def _online(self, fan: RoomFanout) -> int:
        try:
            return len(await self.broker.presence(fan.channel))
        except Exception:
            return 0

    # broker -> sockets -----------------------------------------------------------
    def on_broker_message(self, channel: str, payload: str) -> None:
        fan = self.rooms.get(channel)
        if fan is not None:
            if fan.early is not None:
                fan.early.append(payload)
            else:
                self._on_room_event(fan, payload)
            return
        target = parse_channel(channel)
        if target is not None and target.room_id is None:
            self._on_tenant_event(target.tenant_id, payload)

    def _on_room_event(self, fan: RoomFanout, payload: str) -> None:
        if fan.accept(payload):
            fan.gap_task = self._spawn(room_history.repair_gap(fan, self.loader, self.gap_wait))

    def _on_tenant_event(self, tenant_id: int, payload: str) -> None:
        subs = self.tenants.get(tenant_id)
        if not subs:
            return
        event = events.decode(payload)
        if event.kind == events.BROADCAST:
            for sub in subs:
                sub.push(0, event.text)
            metrics.MESSAGES_OUT.inc(len(subs))
        elif event.kind == events.REVOKE_SESSION:
            for sub in [s for s in subs if str(s.session_id) == event.text]:
                sub.close_soon(Close.REVOKED)
        elif event.kind == events.REVOKE_USER:
            for sub in [s for s in subs if str(s.user_id) == event.text]:
                sub.close_soon(Close.REVOKED)
        elif event.kind == events.REMOVED:
            user_id, room_id = events.removed_of(event)
            fan = self.rooms.get(room_channel(tenant_id, room_id))
            if fan is not None:
                for sub in [s for s in fan.members if s.user_id == user_id]:
                    self._spawn(self.leave(sub, fan))
                    sub.removed_from(fan.name)

    # subscriptions ------------------------------------------------------------------
    async def _subscribe(self, channel: str) -> None:
        async with self._sub_lock:
            await self.broker.subscribe(channel)

    async def _unsubscribe_if_unused(self, channel: str) -> None:
        async with self._sub_lock:
            target = parse_channel(channel)
            in_use = channel in self.rooms or (
                target is not None and target.room_id is None and target.tenant_id in self.tenants
            )
            if not in_use:
                await self.broker.unsubscribe(channel)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close_all(self, close: Close) -> None:
        for subs in list(self.tenants.values()):
            for sub in list(subs):
                sub.close_soon(close)
        for task in list(self._tasks):
            task.cancel()
