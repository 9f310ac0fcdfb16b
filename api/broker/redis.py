"""Redis broker: pub/sub between workers and machines, and presence shared by all of them.

One pub/sub connection per process. `subscribe` returns only once Redis confirms it, so the
hub's "subscribe, then read the last seq" handoff has no window. If the connection drops, the
listener reconnects with backoff, resubscribes every channel and calls `on_reconnect`, and the
hub catches every room up from Postgres (the source of truth) by seq.

Presence: each worker keeps its own counts and mirrors them into a Redis hash per key and
worker (`sb:pres:<key>:<worker>`, with a TTL it refreshes), listed in `sb:presidx:<key>`. A
killed worker stops refreshing, so its users disappear within `PRESENCE_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter, defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api import metrics
from api.broker.base import Broker, Handler, Reconnected

log = logging.getLogger("switchboard.broker.redis")
# A worker refreshes its presence every PRESENCE_TTL / 3 s; a dead one's vanishes after this.
PRESENCE_TTL = 10
# A subscription Redis has not confirmed by then is retried on the next reconnect.
SUBSCRIBE_TIMEOUT = 5.0
# Commands (publish, presence, ping) give up after this long (redis-py's default is 5 s,
# retried): over a partitioned network the persister waits on its publish, so every
# acknowledgement on this worker waits too. A failed publish loses nothing: the message is
# stored, and hubs catch up from PostgreSQL. (Pub/sub reads wait for messages regardless.)
COMMAND_TIMEOUT = 2.0
# The index of workers per presence key outlives any worker's hash; a day keeps it tidy.
PRESENCE_INDEX_TTL = 86400

# Sum of every live worker's counts for one key; drops workers whose hash expired.
_PRESENCE_READ = """
local users = {}
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local kv = redis.call('HGETALL', ARGV[1] .. w)
  if #kv == 0 and redis.call('EXISTS', ARGV[1] .. w) == 0 then
    redis.call('SREM', KEYS[1], w)
  end
  for i = 1, #kv, 2 do users[kv[i]] = (users[kv[i]] or 0) + tonumber(kv[i + 1]) end
end
local out = {}
for u, n in pairs(users) do if n > 0 then table.insert(out, u); table.insert(out, n) end end
return out
"""

# Write this worker's count for one user, then read the totals (one round trip).
_PRESENCE_WRITE = (
    """
local mine = ARGV[1] .. ARGV[2]
if tonumber(ARGV[4]) > 0 then redis.call('HSET', mine, ARGV[3], ARGV[4])
else redis.call('HDEL', mine, ARGV[3]) end
redis.call('EXPIRE', mine, ARGV[5])
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[6])
"""
    + _PRESENCE_READ
)


class RedisBroker(Broker):
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self.worker = secrets.token_hex(6)
        self._redis: aioredis.Redis = aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
        )
        self._pubsub: Any = None
        self._channels: set[str] = set()
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._handler: Handler | None = None
        self._on_reconnect: Reconnected | None = None
        self._listener: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._local: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._read = self._redis.register_script(_PRESENCE_READ)
        self._write = self._redis.register_script(_PRESENCE_WRITE)

    async def start(self, handler: Handler, on_reconnect: Reconnected | None = None) -> None:
        self._handler = handler
        self._on_reconnect = on_reconnect
        self._listener = asyncio.create_task(self._listen(), name="redis-listener")
        self._refresher = asyncio.create_task(self._refresh_presence(), name="redis-presence")
        with contextlib.suppress(TimeoutError):  # serve anyway; Postgres is the truth
            await asyncio.wait_for(self._connected.wait(), SUBSCRIBE_TIMEOUT)

    async def stop(self) -> None:
        for task in (self._listener, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(RedisError, OSError):  # leave no ghosts behind
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self._local:
                    pipe.delete(self._hash(key))
                await pipe.execute()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._redis.aclose()

    # pub/sub ------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        if not self._connected.is_set():
            return  # subscribed on (re)connect, followed by a catch-up from Postgres
        confirmed = asyncio.get_running_loop().create_future()
        self._confirm[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("subscribe %s: %s (will resubscribe on reconnect)", channel, exc)
        finally:
            self._confirm.pop(channel, None)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        if self._connected.is_set():
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, payload: str) -> None:
        await self._redis.publish(channel, payload)

    async def publish_many(self, items: list[tuple[str, str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in items:
                pipe.publish(channel, payload)
            await pipe.execute()

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping()) and self._connected.is_set()
        except (RedisError, OSError):
            return False

    async def _listen(self) -> None:
        delay = 0.1
        first = True
        while True:
            try:
                self._pubsub = self._redis.pubsub()
                await self._pubsub.subscribe(f"sb:hello:{self.worker}", *self._channels)
                self._connected.set()
                if not first:
                    metrics.BROKER_RECONNECTS.inc()
                    log.warning("reconnected to Redis; catching up from Postgres")
                    await self._restore_presence()
                    if self._on_reconnect is not None:
                        await self._on_reconnect()
                first, delay = False, 0.1
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected.is_set():
                    log.warning("lost Redis: %s", exc)
                self._connected.clear()
                for future in self._confirm.values():
                    if not future.done():
                        future.set_exception(ConnectionError("redis connection lost"))
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _pump(self) -> None:
        handler = self._handler
        assert handler is not None
        async for message in self._pubsub.listen():
            kind = message["type"]
            if kind == "message":
                handler(message["channel"], message["data"])
            elif kind == "subscribe":
                future = self._confirm.get(message["channel"])
                if future is not None and not future.done():
                    future.set_result(None)

    # presence -------------------------------------------------------------------
    def _hash(self, key: str) -> str:
        return f"sb:pres:{key}:{self.worker}"

    async def presence_change(self, key: str, user: str, delta: int) -> tuple[int, int]:
        counts = self._local[key]
        counts[user] += delta
        mine = counts[user]
        if mine <= 0:
            del counts[user]
            if not counts:
                del self._local[key]
        totals = self._pairs(
            await self._write(
                keys=[f"sb:presidx:{key}"],
                args=[
                    f"sb:pres:{key}:",
                    self.worker,
                    user,
                    max(mine, 0),
                    PRESENCE_TTL,
                    PRESENCE_INDEX_TTL,
                ],
            )
        )
        return totals.get(user, 0), len(totals)

    async def presence(self, key: str) -> dict[str, int]:
        return self._pairs(await self._read(keys=[f"sb:presidx:{key}"], args=[f"sb:pres:{key}:"]))

    @staticmethod
    def _pairs(flat: list[Any]) -> dict[str, int]:
        return {str(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def _restore_presence(self) -> None:
        """Rewrite this worker's whole presence (Redis may have restarted empty)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, counts in self._local.items():
                pipe.delete(self._hash(key))
                if counts:
                    pipe.hset(self._hash(key), mapping={u: n for u, n in counts.items()})
                pipe.expire(self._hash(key), PRESENCE_TTL)
                pipe.sadd(f"sb:presidx:{key}", self.worker)
            await pipe.execute()

    async def _refresh_presence(self) -> None:
        """Keep this worker's presence alive; a dead worker's expires by itself."""
        while True:
            await asyncio.sleep(PRESENCE_TTL / 3)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in self._local:
                        pipe.expire(self._hash(key), PRESENCE_TTL)
                        pipe.sadd(f"sb:presidx:{key}", self.worker)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                log.debug("presence refresh failed: %s", exc)
