"""`/dms`: direct rooms, one per pair of users."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import CHECKED_INPUT, CurrentPrincipal, ServicesDep
from api.errors import error_responses
from api.routes.rooms import room_out
from api.schemas import DirectIn, DirectOut, RoomOut

router = APIRouter(
    prefix="/dms",
    tags=["direct rooms"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("", response_model=RoomOut, status_code=201, responses={200: {"model": RoomOut}})
async def open_direct_room(
    body: DirectIn, principal: CurrentPrincipal, services: ServicesDep, response: Response
) -> RoomOut:
    """The caller's direct room with `username`: 201 when created now, 200 after."""
    seen, created = await services.direct.open(principal, body.username)
    if not created:
        response.status_code = 200
    return room_out(seen)


@router.get("", response_model=list[DirectOut])
async def list_direct_rooms(principal: CurrentPrincipal, services: ServicesDep) -> list[DirectOut]:
    return [
        DirectOut.model_validate(
            {
                "name": seen.room.name,
                "with": seen.dm_with or "",
                "last_seq": seen.room.last_seq,
                "last_read": seen.read.last_read,
                "unread": seen.read.unread,
            }
        )
        for seen in await services.direct.list(principal)
    ]
