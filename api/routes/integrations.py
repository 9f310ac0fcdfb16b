"""What an app's backend calls with an API key: mint credentials for its users, publish."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CHECKED_INPUT, PublisherPrincipal, ServicesDep, TokenMinter
from api.errors import error_responses
from api.publishing import Outgoing
from api.schemas import (
    MintedToken,
    MintIn,
    PublishIn,
    PublishOut,
    PublishResult,
    TicketMintIn,
    TicketOut,
)

router = APIRouter(
    tags=["integrations"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("/tokens", response_model=MintedToken)
async def mint_token(body: MintIn, principal: TokenMinter, services: ServicesDep) -> MintedToken:
    """An access token for one of the tenant's users (created first with `create`), so the
    app's users connect without Switchboard passwords."""
    ttl = body.ttl or services.settings.auth.access_ttl_seconds
    token, expires_in = await services.auth.delegated.access_token(
        principal.tenant_id, body.username, create=body.create, ttl=ttl
    )
    return MintedToken(access_token=token, expires_in=expires_in)


@router.post("/tokens/ws-ticket", response_model=TicketOut)
async def mint_ticket(
    body: TicketMintIn, principal: TokenMinter, services: ServicesDep
) -> TicketOut:
    """A single-use WebSocket ticket for one of the tenant's users: hand it to the app."""
    ticket, expires_in = await services.auth.mint_ticket(
        principal.tenant_id, body.username, create=body.create
    )
    return TicketOut(ticket=ticket, expires_in=expires_in)


@router.post("/publish", response_model=PublishOut, response_model_exclude_none=True)
async def publish(
    body: PublishIn, principal: PublisherPrincipal, services: ServicesDep
) -> PublishOut:
    """Up to `limits.publish_batch` messages in one transaction; a result per message in
    request order (`seq`, or `error`); each idempotent by its client_msg_id."""
    results = await services.publishing.publish(
        principal, [Outgoing(m.room, m.body, m.client_msg_id) for m in body.messages]
    )
    return PublishOut(results=[PublishResult(**r) for r in results])
