"""The process's services, wired once per app and reached from routes via app.state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from api import metrics
from api.auth import AuthService
from api.broadcasts import BroadcastService
from api.broker import Broker, create_broker, tenant_channel
from api.broker.memory import MemoryBroker
from api.broker.relay import RelayListener
from api.db import create_engine, db_role_settings
from api.hub import Hub
from api.repository import Database
from api.rooms import RoomService
from api.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    auth: AuthService
    rooms: RoomService
    hub: Hub
    broadcasts: BroadcastService
    relay: RelayListener | None = field(default=None)
    lag_watch: asyncio.Task[None] | None = field(default=None)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(create_engine(settings))
        broker = create_broker(settings.broker.url)

        async def publish_tenant_event(tenant_id: int, payload: str) -> None:
            await broker.publish(tenant_channel(tenant_id), payload)

        rooms = RoomService(db, broker, settings)
        hub = Hub(
            broker,
            rooms,
            gap_wait=settings.broker.gap_wait_ms / 1000,
            replay_page=settings.ws.replay_page_size,
            sockets_per_user=settings.limits.sockets_per_user,
        )
        auth = AuthService(db, settings, publish_tenant_event)
        broadcasts = BroadcastService(db, broker, rooms)
        relay = None
        if isinstance(broker, MemoryBroker):  # let `switchboard broadcast` reach our sockets
            relay = RelayListener(
                settings.database.url, db_role_settings(settings), broadcasts.resolve_relayed
            )
        return cls(settings, db, broker, auth, rooms, hub, broadcasts, relay)

    async def start(self) -> None:
        problems = await self.db.isolation_problems()
        if problems:
            raise RuntimeError(
                "refusing to serve: tenant isolation in Postgres would not apply ("
                + "; ".join(problems)
                + "). Run `switchboard migrate`, and leave "
                "database.app_role = switchboard_app or log in as a restricted role."
            )
        await self.hub.start()
        self.rooms.persister.start()
        if self.relay is not None:
            self.relay.start()
        self.lag_watch = asyncio.create_task(metrics.watch_loop_lag(), name="loop-lag")

    async def stop(self) -> None:
        if self.lag_watch is not None:
            self.lag_watch.cancel()
        if self.relay is not None:
            await self.relay.stop()
        await self.rooms.persister.stop()
        await self.broker.stop()
        await self.db.dispose()
        self.auth.hasher.close()


def get_services(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services
