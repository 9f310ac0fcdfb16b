"""`/admin/*` (role admin of the caller's tenant) and `GET /broadcasts` (any member)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.deps import CHECKED_INPUT, Accounts, AdminPrincipal, Broadcasts, CurrentPrincipal, Rooms
from api.errors import error_responses
from api.protocol import MAX_SEQ
from api.protocol.server import iso
from api.repository import UserRow
from api.schemas import (
    AdminRoomOut,
    BroadcastAccepted,
    BroadcastIn,
    BroadcastList,
    BroadcastOut,
    UserIn,
    UserOut,
)

router = APIRouter(
    tags=["admin"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)


@router.post("/admin/broadcast", response_model=BroadcastAccepted, status_code=202)
async def broadcast(
    body: BroadcastIn,
    admin: AdminPrincipal,
    broadcasts: Broadcasts,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BroadcastAccepted:
    answer = await broadcasts.broadcast(
        admin.tenant_id,
        sender=admin.username,
        sender_id=admin.user_id,
        body=body.body,
        room_names=body.rooms,
        idempotency_key=idempotency_key,
    )
    return BroadcastAccepted(**answer)


@router.get("/broadcasts", response_model=BroadcastList)
async def list_broadcasts(
    principal: CurrentPrincipal,
    broadcasts: Broadcasts,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BroadcastList:
    page = await broadcasts.since(principal.tenant_id, after, limit)
    return BroadcastList(
        broadcasts=[
            BroadcastOut(id=b.id, sender=b.sender, body=b.body, ts=iso(b.ts))
            for b in page.broadcasts
        ],
        has_more=page.has_more,
    )


@router.get("/admin/rooms", response_model=list[AdminRoomOut])
async def all_rooms(admin: AdminPrincipal, rooms: Rooms) -> list[AdminRoomOut]:
    """Every room of the tenant, private ones included, with its member count."""
    return [
        AdminRoomOut(
            name=r.room.name,
            private=r.room.private,
            created_at=r.room.created_at,
            last_seq=r.room.last_seq,
            members=r.members,
        )
        for r in await rooms.all_rooms(admin)
    ]


def _user_out(user: UserRow) -> UserOut:
    return UserOut(
        username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at
    )


@router.post("/admin/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, admin: AdminPrincipal, accounts: Accounts) -> UserOut:
    return _user_out(
        await accounts.create_user(admin.tenant_id, body.username, body.password, body.role)
    )


@router.get("/admin/users", response_model=list[UserOut])
async def list_users(admin: AdminPrincipal, accounts: Accounts) -> list[UserOut]:
    return [_user_out(u) for u in await accounts.users(admin.tenant_id)]


@router.delete("/admin/users/{username}", status_code=204)
async def disable_user(username: str, admin: AdminPrincipal, accounts: Accounts) -> Response:
    """Disable (not delete): history keeps its sender; sessions and sockets end now."""
    await accounts.disable_user(admin.tenant_id, username)
    return Response(status_code=204)
