"""Webhook endpoints for tenant admins: register (with the address check), list, delete,
the latest deliveries, redeliver; and the events that are not written by the persister."""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

from api.db import Database
from api.errors import NotFound, ValidationFailed
from api.principal import Principal
from api.repository.webhooks import DeliveryRow, EndpointRow
from api.settings import WebhookSettings
from api.webhooks import EVENT_TYPES
from api.webhooks.ssrf import UnsafeTarget, resolve

log = logging.getLogger("switchboard.webhooks")
RECENT_DELIVERIES = 100


def new_secret() -> str:
    """Standard Webhooks' form: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class WebhookService:
    def __init__(self, db: Database, settings: WebhookSettings) -> None:
        self.db = db
        self.settings = settings

    async def register(self, p: Principal, url: str, events: list[str]) -> EndpointRow:
        unknown = set(events) - EVENT_TYPES
        if not events or unknown:
            raise ValidationFailed(f"events must be some of {sorted(EVENT_TYPES)}")
        try:
            await resolve(url, allow_private=self.settings.allow_private_addresses)
        except UnsafeTarget as exc:
            raise ValidationFailed(str(exc)) from exc
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.webhooks.create(url, sorted(set(events)), new_secret())

    async def endpoints(self, p: Principal) -> list[EndpointRow]:
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.webhooks.endpoints()

    async def delete(self, p: Principal, endpoint_id: int) -> None:
        async with self.db.tx(p.tenant_id) as tx:
            if not await tx.webhooks.delete(endpoint_id):
                raise NotFound("no such webhook")

    async def deliveries(self, p: Principal, endpoint_id: int) -> list[DeliveryRow]:
        async with self.db.tx(p.tenant_id) as tx:
            if await tx.webhooks.endpoint(endpoint_id) is None:
                raise NotFound("no such webhook")
            return await tx.webhooks.deliveries(endpoint_id, RECENT_DELIVERIES)

    async def redeliver(self, p: Principal, endpoint_id: int, event_id: str) -> None:
        async with self.db.tx(p.tenant_id) as tx:
            if not await tx.webhooks.redeliver(endpoint_id, event_id):
                raise NotFound("no such delivery for this webhook")

    async def presence_changed(self, tenant_id: int, username: str, online: bool) -> None:
        """A user's first socket in the tenant opened, or the last one closed (counted on
        every worker). No stored change is behind it, so it is written on its own."""
        event_type = "presence.online" if online else "presence.offline"
        data: dict[str, Any] = {"user": username}
        try:
            async with self.db.tx(tenant_id) as tx:
                await tx.webhooks.enqueue(event_type, data)
        except Exception as exc:  # presence is advisory; so is its event
            log.warning("could not record %s: %s", event_type, exc)
