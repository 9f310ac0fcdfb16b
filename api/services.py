"""The composition root: every service is built here, once, and the app, the CLI, the
benchmark and the tests all get them from `Services.build`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from api import metrics
from api.accounts import AccountService
from api.amendments import AmendService
from api.api_keys import ApiKeyService
from api.broadcasts import BroadcastService
from api.broker import Broker, create_broker, tenant_channel
from api.broker.memory import MemoryBroker
from api.broker.relay import CHANNEL as RELAY_CHANNEL
from api.broker.relay import RelayListener, RelayPublisher
from api.db import Database, create_engine, db_role_settings
from api.direct_rooms import DirectRoomService
from api.hub import Hub
from api.persister import Persister
from api.publishing import PublishService
from api.reads import ReadService
from api.retention import RetentionService
from api.rooms import RoomService
from api.security import PasswordHasher
from api.sessions import AuthService
from api.settings import Settings
from api.signals import SignalService
from api.webhooks.service import WebhookService
from api.webhooks.worker import WebhookWorker


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    hasher: PasswordHasher
    accounts: AccountService
    auth: AuthService
    persister: Persister
    rooms: RoomService
    hub: Hub
    broadcasts: BroadcastService
    direct: DirectRoomService
    reads: ReadService
    amend: AmendService
    signals: SignalService
    retention: RetentionService
    api_keys: ApiKeyService
    publishing: PublishService
    webhooks: WebhookService
    relay: RelayListener | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls, settings: Settings, *, relay_publisher: bool = False, **engine_options: Any
    ) -> Services:
        """`relay_publisher`: with no Redis, publish through Postgres NOTIFY to the server
        that owns the sockets (for CLI commands); `engine_options` override the pool (a CLI
        command needs two connections, not a server's pool)."""
        db = Database(create_engine(settings, **engine_options))
        broker: Broker
        if relay_publisher and not settings.broker.url:
            broker = RelayPublisher(lambda reference: db.notify(RELAY_CHANNEL, reference))
        else:
            broker = create_broker(settings.broker.url)

        async def publish_tenant_event(tenant_id: int, payload: str) -> None:
            await broker.publish(tenant_channel(tenant_id), payload)

        hasher = PasswordHasher(settings.auth)
        persister = Persister(
            db,
            broker,
            batch_max=settings.persister.batch_max,
            batch_wait=settings.persister.batch_wait_ms / 1000,
            drain_seconds=settings.persister.drain_seconds,
        )
        rooms = RoomService(db, broker, persister, settings)
        webhooks = WebhookService(db, settings.webhooks)
        hub = Hub(
            broker,
            rooms,
            gap_wait=settings.broker.gap_wait_ms / 1000,
            replay_page=settings.ws.replay_page_size,
            recent_per_room=settings.ws.recent_per_room,
            sockets_per_user=settings.limits.sockets_per_user,
            on_presence=webhooks.presence_changed,
        )
        broadcasts = BroadcastService(db, broker, rooms, persister)
        relay = None
        if isinstance(broker, MemoryBroker):  # let `switchboard broadcast` reach our sockets
            relay = RelayListener(
                settings.database.url, db_role_settings(settings), broadcasts.resolve_relayed
            )
        return cls(
            settings,
            db,
            broker,
            hasher,
            AccountService(db, hasher, publish_tenant_event),
            AuthService(db, settings, hasher, publish_tenant_event),
            persister,
            rooms,
            hub,
            broadcasts,
            DirectRoomService(db, rooms),
            ReadService(db, broker),
            AmendService(db, broker, rooms),
            SignalService(broker, settings),
            RetentionService(db, rooms, settings.retention),
            ApiKeyService(db),
            PublishService(db, rooms, persister, settings.limits.publish_batch),
            webhooks,
            relay,
        )

    async def start(self) -> None:
        """Everything a serving process runs: refuses to serve without tenant isolation."""
        problems = await self.db.isolation_problems()
        if problems:
            raise RuntimeError(
                "refusing to serve: tenant isolation in Postgres would not apply ("
                + "; ".join(problems)
                + "). Run `switchboard migrate`, and leave "
                "database.app_role = switchboard_app or log in as a restricted role."
            )
        await self.hub.start()
        self.persister.start()
        if self.relay is not None:
            self.relay.start()
        self.background.append(asyncio.create_task(metrics.watch_loop_lag(), name="loop-lag"))
        self.background.append(asyncio.create_task(self.retention.run(), name="retention"))
        if self.settings.webhooks.deliver:
            worker = WebhookWorker(self.db, self.settings.webhooks)
            self.background.append(asyncio.create_task(worker.run(), name="webhooks"))

    async def stop(self) -> None:
        """Stops whatever was started (a CLI command starts only the persister)."""
        for task in self.background:
            task.cancel()
        if self.relay is not None:
            await self.relay.stop()
        await self.persister.stop()
        await self.broker.stop()
        await self.db.dispose()
        self.hasher.close()
