"""The process's services, wired once per app and reached from routes via app.state."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from api import events
from api.auth import AuthService
from api.broker import Broker, create_broker, tenant_channel
from api.db import create_engine
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

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(create_engine(settings))
        broker = create_broker(settings.broker.url)

        async def publish_tenant_event(tenant_id: int, payload: str) -> None:
            await broker.publish(tenant_channel(tenant_id), payload)

        rooms = RoomService(db, broker, settings)
        hub = Hub(broker, rooms, gap_wait=settings.broker.gap_wait_ms / 1000,
                  replay_page=settings.ws.replay_page_size,
                  sockets_per_user=settings.limits.sockets_per_user)
        auth = AuthService(db, settings, publish_tenant_event)
        return cls(settings, db, broker, auth, rooms, hub)

    async def start(self) -> None:
        await self.hub.start()
        self.rooms.persister.start()

    async def stop(self) -> None:
        await self.rooms.persister.stop()
        await self.broker.stop()
        await self.db.dispose()


def get_services(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


__all__ = ["Services", "events", "get_services"]
