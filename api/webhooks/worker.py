"""Delivers the outbox: every worker runs one, and `FOR UPDATE SKIP LOCKED` plus a lease
(`locked_until`) give each due delivery to one of them. A delivery that dies with its worker
is taken again when the lease runs out.

One slow or dead endpoint never holds up the others: deliveries run concurrently (up to
`webhooks.concurrency`), at most `webhooks.per_endpoint` to one endpoint, and the poller
keeps claiming for other endpoints while those are in flight. Nothing here is on the message
path: the persister only writes outbox rows in its own transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from api.db import Database
from api.protocol.server import iso
from api.repository.webhooks import Job
from api.settings import WebhookSettings
from api.webhooks.ssrf import UnsafeTarget, resolve

log = logging.getLogger("switchboard.webhooks")
LEASE_MARGIN_SECONDS = 10.0  # a claimed delivery is someone else's again after timeout + this


class DeliveryFailed(Exception):
    pass


class WebhookWorker:
    def __init__(self, db: Database, settings: WebhookSettings) -> None:
        self.db = db
        self.s = settings
        self.inflight: dict[asyncio.Task[None], int] = {}  # task -> endpoint id
        self.http: httpx.AsyncClient | None = None

    async def run(self) -> None:
        self.http = httpx.AsyncClient(timeout=self.s.timeout_seconds, follow_redirects=False)
        try:
            while True:
                try:
                    await self.poll()
                except Exception as exc:
                    log.warning("webhook poll failed: %s", exc)
                await asyncio.sleep(self.s.poll_seconds)
        finally:
            for task in list(self.inflight):
                task.cancel()
            await self.http.aclose()

    async def poll(self) -> int:
        """Claim what this worker has room for, and start delivering it."""
        room = self.s.concurrency - len(self.inflight)
        if room <= 0:
            return 0
        per_endpoint: dict[int, int] = {}
        for endpoint in self.inflight.values():
            per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
        busy = [e for e, n in per_endpoint.items() if n >= self.s.per_endpoint]
        async with self.db.tx() as tx:
            await tx.deliveries.admit_worker()
            jobs = await tx.deliveries.claim(
                room, self.s.per_endpoint, self.s.timeout_seconds + LEASE_MARGIN_SECONDS, busy
            )
        for job in jobs:
            task = asyncio.ensure_future(self.deliver(job))
            self.inflight[task] = job.endpoint_id
            task.add_done_callback(self.inflight.pop)
        return len(jobs)

    async def deliver(self, job: Job) -> None:
        try:
            await self.send(job)
        except Exception as exc:  # every failure is recorded on the delivery, then retried
            retry_in = self.backoff(job.attempts)
            await self._record(job, error=_describe(exc), retry_in=retry_in)
            return
        await self._record(job)

    def backoff(self, attempts: int) -> float | None:
        """Exponential, with jitter (half to all of the step); None after the last attempt."""
        if attempts >= self.s.max_attempts:
            return None
        step = min(self.s.backoff_base_seconds * 2 ** (attempts - 1), self.s.backoff_max_seconds)
        return float(step * random.uniform(0.5, 1.0))

    async def send(self, job: Job) -> None:
        assert self.http is not None
        try:
            target = await resolve(job.url, allow_private=self.s.allow_private_addresses)
        except UnsafeTarget as exc:
            raise DeliveryFailed(f"refused: {exc}") from exc
        body = json.dumps(
            {
                "id": job.event_id,
                "type": job.type,
                "tenant": job.tenant,
                "ts": iso(job.created_at),
                "data": job.data,
            },
            separators=(",", ":"),
        )
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "Switchboard-Webhooks/1",
            "webhook-id": job.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(job.secret).sign(job.event_id, now, body),
        }
        url = httpx.URL(job.url)
        headers["host"] = url.netloc.decode()
        pinned = url.copy_with(host=target.address)  # the address that was checked
        request = self.http.build_request(
            "POST",
            pinned,
            content=body,
            headers=headers,
            extensions={"sni_hostname": target.host} if url.scheme == "https" else {},
        )
        response = await self.http.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():  # an answer is read up to a cap
                read += len(chunk)
                if read >= self.s.max_response_bytes:
                    break
        finally:
            await response.aclose()
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def _record(
        self, job: Job, *, error: str | None = None, retry_in: float | None = None
    ) -> None:
        try:
            async with self.db.tx() as tx:
                await tx.deliveries.admit_worker()
                if error is None:
                    await tx.deliveries.delivered(job)
                else:
                    await tx.deliveries.failed(job, error, retry_in)
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.warning("recording delivery %s failed: %s", job.event_id, exc)


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"connection refused or failed: {exc}"
    return str(exc) or type(exc).__name__
