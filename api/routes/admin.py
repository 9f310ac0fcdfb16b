"""`/admin/*` (role admin of the caller's tenant) and `GET /broadcasts` (any member)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from api.auth import AdminPrincipal, CurrentPrincipal
from api.repository import UserRow
from api.schemas import (
    AdminRoomOut,
    BroadcastAccepted,
    BroadcastIn,
    BroadcastList,
    BroadcastOut,
    UserIn,
    UserOut,
    iso,
)
from api.services import get_services

router = APIRouter(tags=["admin"])


@router.post("/admin/broadcast", response_model=BroadcastAccepted, status_code=202)
async def broadcast(
    body: BroadcastIn,
    request: Request,
    admin: AdminPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BroadcastAccepted:
    answer = await get_services(request).broadcasts.broadcast(
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
    request: Request,
    principal: CurrentPrincipal,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BroadcastList:
    found, has_more = await get_services(request).broadcasts.since(
        principal.tenant_id, after, limit
    )
    return BroadcastList(
        broadcasts=[
            BroadcastOut(id=b.id, sender=b.sender, body=b.body, ts=iso(b.ts)) for b in found
        ],
        has_more=has_more,
    )


@router.get("/admin/rooms", response_model=list[AdminRoomOut])
async def all_rooms(request: Request, admin: AdminPrincipal) -> list[AdminRoomOut]:
    """Every room of the tenant, private ones included, with its member count."""
    rooms = await get_services(request).rooms.all_rooms(admin)
    return [
        AdminRoomOut(
            name=r.name,
            private=r.private,
            created_at=r.created_at,
            last_seq=r.last_seq,
            members=members,
        )
        for r, members in rooms
    ]


def _user_out(user: UserRow) -> UserOut:
    return UserOut(
        username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at
    )


@router.post("/admin/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, request: Request, admin: AdminPrincipal) -> UserOut:
    return _user_out(
        await get_services(request).auth.create_user(
            admin.tenant_id, body.username, body.password, body.role
        )
    )


@router.get("/admin/users", response_model=list[UserOut])
async def list_users(request: Request, admin: AdminPrincipal) -> list[UserOut]:
    return [_user_out(u) for u in await get_services(request).auth.users(admin.tenant_id)]


@router.delete("/admin/users/{username}", status_code=204)
async def disable_user(username: str, request: Request, admin: AdminPrincipal) -> Response:
    """Disable (not delete): history keeps its sender; sessions and sockets end now."""
    await get_services(request).auth.disable_user(admin.tenant_id, username)
    return Response(status_code=204)
