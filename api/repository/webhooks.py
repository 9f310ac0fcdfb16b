"""Webhook endpoints and the outbox of deliveries (one row per event and endpoint).

`enqueue` runs inside the transaction of the change it reports, so an event exists exactly
when its change committed. The worker's statements span tenants: they run in transactions
that set `app.webhook_worker`, which the outbox's row-level security policy admits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, text, update

from api.repository.base import Repo, delivery_t, endpoint_t


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: int
    url: str
    events: list[str]
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    event_id: str
    type: str
    attempts: int
    status: str
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery: everything needed to send it without another query."""

    event_id: str
    endpoint_id: int
    tenant_id: int
    tenant: str
    type: str
    data: Any
    created_at: datetime
    attempts: int  # including this one
    url: str
    secret: str


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _endpoint(r: Any) -> EndpointRow:
    return EndpointRow(r.id, r.url, list(r.events), r.secret, r.created_at)


class WebhookRepo(Repo):
    async def create(self, url: str, events: list[str], secret: str) -> EndpointRow:
        row = (
            await self.conn.execute(
                insert(endpoint_t)
                .values(tenant_id=self.tenant_id, url=url, events=events, secret=secret)
                .returning(*endpoint_t.c)
            )
        ).one()
        return _endpoint(row)

    async def endpoints(self) -> list[EndpointRow]:
        rows = await self.conn.execute(
            select(endpoint_t).where(endpoint_t.c.tenant_id == self.tenant_id).order_by("id")
        )
        return [_endpoint(r) for r in rows]

    async def endpoint(self, endpoint_id: int) -> EndpointRow | None:
        row = (
            await self.conn.execute(
                select(endpoint_t).where(
                    endpoint_t.c.tenant_id == self.tenant_id, endpoint_t.c.id == endpoint_id
                )
            )
        ).one_or_none()
        return _endpoint(row) if row else None

    async def delete(self, endpoint_id: int) -> bool:
        done = await self.conn.execute(
            delete(endpoint_t).where(
                endpoint_t.c.tenant_id == self.tenant_id, endpoint_t.c.id == endpoint_id
            )
        )
        return bool(done.rowcount)

    async def enqueue(self, event_type: str, data: Any, event_id: str | None = None) -> None:
        """The event, for every endpoint of the tenant that wants it (none: nothing)."""
        await self.conn.execute(
            text(
                "INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, type, data) "
                "SELECT :event_id, e.id, e.tenant_id, :type, CAST(:data AS jsonb) "
                "FROM webhook_endpoint e WHERE e.tenant_id = :tenant_id AND :type = ANY(e.events)"
            ),
            dict(
                event_id=event_id or new_event_id(),
                type=event_type,
                data=json.dumps(data),
                tenant_id=self.tenant_id,
            ),
        )

    async def deliveries(self, endpoint_id: int, limit: int) -> list[DeliveryRow]:
        d = delivery_t
        rows = await self.conn.execute(
            select(d)
            .where(d.c.tenant_id == self.tenant_id, d.c.endpoint_id == endpoint_id)
            .order_by(d.c.created_at.desc())
            .limit(limit)
        )
        return [
            DeliveryRow(r.event_id, r.type, r.attempts, r.status, r.last_error, r.delivered_at)
            for r in rows
        ]

    async def redeliver(self, endpoint_id: int, event_id: str) -> bool:
        """Due again now, attempts from zero; the event keeps its id."""
        d = delivery_t
        done = await self.conn.execute(
            update(d)
            .where(
                d.c.tenant_id == self.tenant_id,
                d.c.endpoint_id == endpoint_id,
                d.c.event_id == event_id,
            )
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=text("now()"),
                locked_until=None,
                last_error=None,
            )
        )
        return bool(done.rowcount)


_CLAIM = """
WITH due AS (
    SELECT endpoint_id, event_id,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth
    FROM webhook_delivery
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND (locked_until IS NULL OR locked_until < now())
      AND NOT (endpoint_id = ANY(:busy))
    ORDER BY next_attempt_at
    LIMIT :scan
), picked AS (
    SELECT d.endpoint_id, d.event_id FROM webhook_delivery d
    JOIN due ON due.endpoint_id = d.endpoint_id AND due.event_id = d.event_id
    WHERE due.nth <= :per_endpoint
    ORDER BY d.next_attempt_at
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_delivery d
SET attempts = d.attempts + 1, locked_until = now() + make_interval(secs => :lock_seconds)
FROM picked, webhook_endpoint e, tenant t
WHERE d.endpoint_id = picked.endpoint_id AND d.event_id = picked.event_id
  AND e.id = d.endpoint_id AND t.id = d.tenant_id
RETURNING d.event_id, d.endpoint_id, d.tenant_id, t.slug, d.type, d.data, d.created_at,
          d.attempts, e.url, e.secret
"""


class DeliveryQueue(Repo):
    """The worker's side of the outbox, across tenants (see the module's docstring)."""

    async def admit_worker(self) -> None:
        await self.conn.execute(text("SELECT set_config('app.webhook_worker', 'on', true)"))

    async def claim(
        self, limit: int, per_endpoint: int, lock_seconds: float, busy: list[int]
    ) -> list[Job]:
        """Due deliveries, locked for `lock_seconds`; at most `per_endpoint` per endpoint and
        none of the endpoints in `busy`, so one slow endpoint cannot take every slot."""
        rows = await self.conn.execute(
            text(_CLAIM),
            dict(
                limit=limit,
                scan=limit * 4,
                per_endpoint=per_endpoint,
                lock_seconds=lock_seconds,
                busy=busy,
            ),
        )
        return [
            Job(
                r.event_id,
                r.endpoint_id,
                r.tenant_id,
                r.slug,
                r.type,
                r.data,
                r.created_at,
                r.attempts,
                r.url,
                r.secret,
            )
            for r in rows
        ]

    async def delivered(self, job: Job) -> None:
        await self.conn.execute(
            text(
                "UPDATE webhook_delivery SET status = 'delivered', delivered_at = now(), "
                "locked_until = NULL, last_error = NULL "
                "WHERE endpoint_id = :endpoint_id AND event_id = :event_id"
            ),
            dict(endpoint_id=job.endpoint_id, event_id=job.event_id),
        )

    async def failed(self, job: Job, error: str, retry_in: float | None) -> None:
        """Retry after `retry_in` seconds, or, with None, give up (`failed`)."""
        await self.conn.execute(
            text(
                "UPDATE webhook_delivery SET last_error = :error, locked_until = NULL, "
                "status = CASE WHEN CAST(:retry_in AS float8) IS NULL THEN 'failed' "
                "ELSE 'pending' END, "
                "next_attempt_at = now() + make_interval(secs => coalesce(:retry_in, 0)) "
                "WHERE endpoint_id = :endpoint_id AND event_id = :event_id"
            ),
            dict(
                error=error[:500],
                retry_in=retry_in,
                endpoint_id=job.endpoint_id,
                event_id=job.event_id,
            ),
        )
