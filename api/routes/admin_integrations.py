"""`/admin/api-keys` and `/admin/webhooks`: a tenant admin's integrations."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import CHECKED_INPUT, AdminPrincipal, ServicesDep
from api.errors import error_responses
from api.repository.api_keys import ApiKeyRow
from api.repository.webhooks import EndpointRow
from api.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    DeliveryOut,
    RedeliverIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
)

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 422, 503),
)


def _key_out(row: ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(id=row.id, name=row.name, scopes=row.scopes, created_at=row.created_at)


def _webhook_out(row: EndpointRow) -> WebhookOut:
    return WebhookOut(id=row.id, url=row.url, events=row.events)


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(
    body: ApiKeyIn, principal: AdminPrincipal, services: ServicesDep
) -> ApiKeyCreated:
    """The key is in this answer only; it acts as `@<name>`."""
    row, key = await services.api_keys.create(principal, body.name, list(body.scopes))
    return ApiKeyCreated(**_key_out(row).model_dump(), key=key)


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(principal: AdminPrincipal, services: ServicesDep) -> list[ApiKeyOut]:
    return [_key_out(r) for r in await services.api_keys.list(principal)]


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: int, principal: AdminPrincipal, services: ServicesDep) -> Response:
    """The key stops working at once, on every worker."""
    await services.api_keys.revoke(principal, key_id)
    return Response(status_code=204)


@router.post("/webhooks", response_model=WebhookCreated, status_code=201)
async def create_webhook(
    body: WebhookIn, principal: AdminPrincipal, services: ServicesDep
) -> WebhookCreated:
    """Refused (422) when the URL's host resolves to a private or local address."""
    row = await services.webhooks.register(principal, body.url, body.events)
    return WebhookCreated(**_webhook_out(row).model_dump(), secret=row.secret)


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(principal: AdminPrincipal, services: ServicesDep) -> list[WebhookOut]:
    return [_webhook_out(r) for r in await services.webhooks.endpoints(principal)]


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: int, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    await services.webhooks.delete(principal, webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
async def webhook_deliveries(
    webhook_id: int, principal: AdminPrincipal, services: ServicesDep
) -> list[DeliveryOut]:
    """The latest deliveries, newest first."""
    rows = await services.webhooks.deliveries(principal, webhook_id)
    return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/webhooks/{webhook_id}/redeliver", status_code=202)
async def redeliver(
    webhook_id: int, body: RedeliverIn, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Due again now, with its attempts reset; the event keeps its id."""
    await services.webhooks.redeliver(principal, webhook_id, body.event_id)
    return Response(status_code=202)
