"""Every SQL statement of the application, one module per aggregate.

A transaction is opened with `Database.tx(tenant_id)` (api.db): it stamps the tenant on the
connection for row-level security and hands out a `Tx` whose repositories carry that tenant,
so no method takes it a second time.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncConnection

from api.repository.accounts import TenantRepo, UserRepo
from api.repository.api_keys import ApiKeyRepo
from api.repository.base import STAMP_TENANT
from api.repository.broadcasts import BroadcastRepo
from api.repository.idempotency import IdempotencyRepo
from api.repository.message_store import Appended, MessageStore
from api.repository.messages import MessageRepo
from api.repository.reads import ReadRepo
from api.repository.retention import RetentionRepo
from api.repository.rooms import RoomRepo
from api.repository.rows import (
    BroadcastPage,
    BroadcastRow,
    ClaimState,
    IdempotencyClaim,
    MessageKind,
    MessagePage,
    MessageRow,
    ReadState,
    Role,
    RoomForUser,
    RoomRow,
    RoomWithMembers,
    SessionView,
    UserRow,
)
from api.repository.sessions import SessionRepo, ThrottleRepo, TicketRepo
from api.repository.webhooks import DeliveryQueue, WebhookRepo


class Tx:
    """One transaction, for one tenant (or none, for tenants and the login throttle)."""

    def __init__(self, conn: AsyncConnection, tenant_id: int | None) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    async def stamp_tenant(self) -> None:
        """Key the row-level security policies on this transaction's tenant."""
        await self.conn.execute(STAMP_TENANT, {"tenant": str(self.tenant_id)})

    async def for_tenant(self, tenant_id: int) -> Tx:
        """The same transaction, from now on acting for `tenant_id`."""
        tx = Tx(self.conn, tenant_id)
        await tx.stamp_tenant()
        return tx

    @cached_property
    def tenants(self) -> TenantRepo:
        return TenantRepo(self.conn, self.tenant_id)

    @cached_property
    def users(self) -> UserRepo:
        return UserRepo(self.conn, self.tenant_id)

    @cached_property
    def sessions(self) -> SessionRepo:
        return SessionRepo(self.conn, self.tenant_id)

    @cached_property
    def tickets(self) -> TicketRepo:
        return TicketRepo(self.conn, self.tenant_id)

    @cached_property
    def throttle(self) -> ThrottleRepo:
        return ThrottleRepo(self.conn, self.tenant_id)

    @cached_property
    def rooms(self) -> RoomRepo:
        return RoomRepo(self.conn, self.tenant_id)

    @cached_property
    def messages(self) -> MessageRepo:
        return MessageRepo(self.conn, self.tenant_id)

    @cached_property
    def reads(self) -> ReadRepo:
        return ReadRepo(self.conn, self.tenant_id)

    @cached_property
    def retention(self) -> RetentionRepo:
        return RetentionRepo(self.conn, self.tenant_id)

    @cached_property
    def api_keys(self) -> ApiKeyRepo:
        return ApiKeyRepo(self.conn, self.tenant_id)

    @cached_property
    def webhooks(self) -> WebhookRepo:
        return WebhookRepo(self.conn, self.tenant_id)

    @cached_property
    def deliveries(self) -> DeliveryQueue:
        return DeliveryQueue(self.conn, None)

    @cached_property
    def broadcasts(self) -> BroadcastRepo:
        return BroadcastRepo(self.conn, self.tenant_id)

    @cached_property
    def idempotency(self) -> IdempotencyRepo:
        return IdempotencyRepo(self.conn, self.tenant_id)


__all__ = [
    "Appended",
    "BroadcastPage",
    "BroadcastRow",
    "ClaimState",
    "IdempotencyClaim",
    "MessageKind",
    "MessagePage",
    "MessageRow",
    "MessageStore",
    "ReadState",
    "Role",
    "RoomForUser",
    "RoomRow",
    "RoomWithMembers",
    "SessionView",
    "Tx",
    "UserRow",
]
