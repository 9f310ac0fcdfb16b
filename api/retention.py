"""Retention: a background pruner that deletes entries older than a room's retention.

Every worker runs the loop; a PostgreSQL advisory lock, held on one connection for the
whole pass, lets one of them prune at a time. A pass deletes in short transactions of
`retention.batch_size` entries from the front of each room, so live traffic never waits long
behind it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from api.db import Database
from api.errors import Forbidden
from api.principal import Principal
from api.repository import RoomRow
from api.rooms import RoomService
from api.settings import RetentionSettings

log = logging.getLogger("switchboard.retention")
PRUNER_LOCK = 0x5357_5245_5445_4E54  # "SWRETENT": one pruning pass at a time, cluster-wide


class RetentionService:
    def __init__(self, db: Database, rooms: RoomService, settings: RetentionSettings) -> None:
        self.db = db
        self.rooms = rooms
        self.settings = settings

    async def set_room_retention(self, p: Principal, name: str, days: int | None) -> RoomRow:
        """A room's own retention in days (0: keep forever), or None for the global one."""
        if not p.is_admin:
            raise Forbidden("only an admin can change a room's retention")
        room = await self.rooms.get(p, name)
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.rooms.set_retention(room.id, days)

    async def run(self) -> None:
        """Prune now and then every `interval_seconds`, until cancelled."""
        while True:
            try:
                pruned = await self.prune_once()
                if pruned:
                    log.info("retention pruned %d entries", pruned)
            except Exception as exc:
                log.warning("retention pass failed: %s", exc)
            await asyncio.sleep(self.settings.interval_seconds)

    async def prune_once(self) -> int:
        """One pass over every tenant's rooms; 0 as well when another worker holds the lock."""
        async with self.db.raw() as lock_conn:
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", PRUNER_LOCK):
                return 0
            try:
                return await self._prune_all()
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", PRUNER_LOCK)

    async def _prune_all(self) -> int:
        now = datetime.now(UTC)
        async with self.db.tx() as tx:
            tenants = await tx.tenants.all_ids()
        pruned = 0
        for tenant_id in tenants:
            async with self.db.tx(tenant_id) as tx:
                rooms = await tx.retention.rooms_with_retention(self.settings.max_age_days)
            for room in rooms:
                cutoff = now - timedelta(days=room.days)
                while True:
                    async with self.db.tx(tenant_id) as tx:
                        n = await tx.retention.prune_batch(
                            room.room_id, cutoff, self.settings.batch_size
                        )
                    pruned += n
                    if n < self.settings.batch_size:
                        break
        return pruned
