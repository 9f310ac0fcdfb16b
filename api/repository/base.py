"""What every repository shares: the tables, the connection, and the transaction's tenant."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, TextClause, func, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.models import (
    ApiKey,
    Broadcast,
    IdempotencyKey,
    LoginThrottle,
    Membership,
    Message,
    Room,
    Session,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WsTicket,
)

tenant_t = cast(Table, Tenant.__table__)
user_t = cast(Table, User.__table__)
session_t = cast(Table, Session.__table__)
ticket_t = cast(Table, WsTicket.__table__)
throttle_t = cast(Table, LoginThrottle.__table__)
room_t = cast(Table, Room.__table__)
member_t = cast(Table, Membership.__table__)
message_t = cast(Table, Message.__table__)
broadcast_t = cast(Table, Broadcast.__table__)
idem_t = cast(Table, IdempotencyKey.__table__)
api_key_t = cast(Table, ApiKey.__table__)
endpoint_t = cast(Table, WebhookEndpoint.__table__)
delivery_t = cast(Table, WebhookDelivery.__table__)

# Row-level security is keyed on `app.tenant_id`, set for the current transaction only.
STAMP_TENANT: TextClause = text("SELECT set_config('app.tenant_id', :tenant, true)")


def stamp_tenant_script(tenant_id: int, *, begin: bool) -> str:
    """The same stamp for the raw hot paths' simple-protocol scripts, which carry BEGIN in
    the same round trip. Only an integer is inlined."""
    stamp = f"SELECT set_config('app.tenant_id', '{int(tenant_id)}', true)"
    return f"BEGIN; {stamp}" if begin else stamp


class NoTenant(RuntimeError):
    """A tenant-owned table was used in a transaction opened without a tenant (a bug)."""


class Repo:
    """A repository bound to one transaction and, for tenant-owned tables, to its tenant:
    methods never take the tenant again, so they cannot be handed a different one."""

    __slots__ = ("_tenant_id", "conn")

    def __init__(self, conn: AsyncConnection, tenant_id: int | None) -> None:
        self.conn = conn
        self._tenant_id = tenant_id

    @property
    def tenant_id(self) -> int:
        if self._tenant_id is None:
            raise NoTenant(f"{type(self).__name__} needs a transaction opened for a tenant")
        return self._tenant_id


def seconds(n: float) -> Any:
    """An SQL interval of `n` seconds."""
    return func.make_interval(0, 0, 0, 0, 0, 0, n)
