"""What a room's live stream did not carry, read back: a joiner's `since` range, a gap
between two workers' messages, what a broker outage swallowed.

The hub decides when; these read (from the room's in-memory recent messages when they
reach back far enough, else from Postgres through the HistoryLoader) and hand the frames
over in seq order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from api import events, metrics
from api.fanout import HistoryLoader, RoomFanout, Subscriber

log = logging.getLogger("switchboard.hub")


async def replay(
    fan: RoomFanout, sub: Subscriber, loader: HistoryLoader, after: int, upto: int, page: int
) -> None:
    """(after, upto] to one joining subscriber, waiting for room in its queue."""
    cached = fan.recent_between(after, upto)
    if cached is not None:  # a reconnect after a blip: no query
        for seq, text in cached:
            await sub.push_wait(seq, text)
        return
    while after < upto:
        epoch = fan.recent_epoch
        frames = await loader.frames_between(
            fan.tenant_id, fan.room_id, fan.name, after, upto, page
        )
        if not frames:
            return
        fan.remember(frames, epoch)
        for seq, text in frames:
            await sub.push_wait(seq, text)
        after = frames[-1][0]


async def repair_gap(fan: RoomFanout, loader: HistoryLoader, wait: float) -> None:
    """A seq jumped: the missing message is probably still in flight from another worker.
    Wait briefly, then read whatever is still missing."""
    try:
        while fan.held:
            await asyncio.sleep(wait)
            gap = fan.missing()
            if gap is None:
                break
            after, upto = gap
            found = await loader.frames_between(
                fan.tenant_id, fan.room_id, fan.name, after, upto, upto - after
            )
            metrics.GAP_FILLS.inc(len(found))
            for seq, text in found:
                fan.accept(events.message_event(seq, text))
    except Exception:
        log.exception("gap repair failed for %s", fan.channel)
    finally:
        fan.gap_task = None


async def catch_up(
    fan: RoomFanout, loader: HistoryLoader, page: int, rooms: Mapping[str, RoomFanout]
) -> None:
    """After a broker outage: deliver whatever the room missed, up to its last seq now
    (while it is still this process's fan-out of the room, in `rooms`)."""
    try:
        last = await loader.last_seq(fan.tenant_id, fan.room_id)
        while fan.delivered < last and rooms.get(fan.channel) is fan:
            frames = await loader.frames_between(
                fan.tenant_id, fan.room_id, fan.name, fan.delivered, last, page
            )
            if not frames:
                break
            for seq, text in frames:
                fan.accept(events.message_event(seq, text))
    except Exception:
        log.exception("catch-up failed for %s", fan.channel)
