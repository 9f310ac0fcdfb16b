"""Passwords (passlib) and tokens (PyJWT): pure functions and small value objects, no FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import multiprocessing
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import jwt
from passlib.context import CryptContext

from api.settings import AuthSettings

ACCESS_TYPE = "access"


class HashingBusy(Exception):
    """The hashing budget is spent: shed the login at once rather than queue it."""

    def __init__(self, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after:.1f} s")


# The first estimate of one hash's CPU time, until hashes are measured (argon2id, 19 MiB, t=2).
INITIAL_HASH_SECONDS = 0.035
HASH_COST_SMOOTHING = 0.2  # weight of the newest measurement in the running estimate


class CpuBudget:
    """A token bucket whose tokens are CPU seconds: `share` of one core on average, with a
    burst of `burst_seconds` of that. Logins are admitted against it before any work."""

    def __init__(self, share: float, burst_seconds: float = 2.0) -> None:
        self.rate = share
        self.capacity = max(share * burst_seconds, INITIAL_HASH_SECONDS)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self, cost: float) -> float:
        """0.0 when admitted (the cost is taken); else the seconds until it would be."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate if self.rate > 0 else 60.0


def _context(memory_kib: int, time_cost: int) -> CryptContext:
    return CryptContext(
        schemes=["argon2", "bcrypt"],
        deprecated=["bcrypt"],
        argon2__type="ID",
        argon2__memory_cost=memory_kib,
        argon2__rounds=time_cost,
        argon2__parallelism=1,
    )


_process_context: CryptContext | None = None  # in a hashing process


def _start_hashing_process(nice: int, idle: bool, memory_kib: int, time_cost: int) -> None:
    """Runs once in each hashing process: a lower CPU priority, so sockets (the server's
    event loop) and everything else on the machine win any contest for a core."""
    global _process_context
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if idle:  # Linux: run only on a core nothing else wants, and yield it at once
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    _process_context = _context(memory_kib, time_cost)


def _exit_with_parent(parent: int) -> None:
    """A worker holds both ends of its job queue, so it never sees its server go: it
    watches for that itself (the server may also have been killed outright)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _hash_job(operation: str, *args: Any) -> tuple[Any, float]:
    """In a hashing process: the result, and the CPU time it took."""
    assert _process_context is not None
    started = time.process_time()
    result = getattr(_process_context, operation)(*args)
    return result, time.process_time() - started


class PasswordHasher:
    """argon2id for new hashes; bcrypt still verifies and is flagged for re-hashing.

    A hash costs ~30 ms of CPU. It runs in a small pool of low-priority *processes* (at
    most cores - 1): threads would share the event loop's GIL, and a low-priority thread
    preempted while holding it stalls every socket (measured: loop lag p99 500 ms). Logins
    are admitted against a CPU budget (`auth.hash_cpu_share` of one core, measured per
    hash) and, past `max_pending` waiting hashes, refused: a fast 503 with Retry-After
    instead of a queue that slows every socket down.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._workers = settings.hash_workers or max(1, (os.cpu_count() or 2) - 1)
        self._pool: ProcessPoolExecutor | None = None  # started by the first hash
        self._max_pending = settings.hash_max_pending
        self._pending = 0
        self._budget = CpuBudget(settings.hash_cpu_share)
        self.hash_seconds = INITIAL_HASH_SECONDS  # running estimate of one hash's CPU time
        self._context = _context(settings.argon2_memory_kib, settings.argon2_time_cost)
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(16))

    def hash_sync(self, password: str) -> str:
        hashed: str = self._context.hash(password)
        return hashed

    def admit(self) -> None:
        """Take one hash's cost from the budget now (before the login does any other work),
        or raise HashingBusy with when to retry."""
        if self._pending >= self._max_pending:
            raise HashingBusy(1.0)
        wait = self._budget.take(self.hash_seconds)
        if wait > 0:
            raise HashingBusy(wait)

    def _processes(self) -> ProcessPoolExecutor:
        if self._pool is None:
            s = self._settings
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                # spawn: a fork would copy this process's threads' locks and its sockets
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_hashing_process,
                initargs=(s.hash_nice, s.hash_idle, s.argon2_memory_kib, s.argon2_time_cost),
            )
        return self._pool

    async def _run(self, operation: str, *args: Any) -> Any:
        self._pending += 1
        pool = self._processes()
        try:
            result, cpu = await asyncio.get_running_loop().run_in_executor(
                pool, _hash_job, operation, *args
            )
        except BrokenProcessPool:
            # A hashing process died (the OOM killer, a kill): a new pool for the next
            # login, and this one is asked to retry rather than failing forever.
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise HashingBusy(1.0) from None
        finally:
            self._pending -= 1
        self.hash_seconds += HASH_COST_SMOOTHING * (cpu - self.hash_seconds)
        return result

    async def hash(self, password: str) -> str:
        hashed: str = await self._run("hash", password)
        return hashed

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """(ok, new_hash or None). With no stored hash, burn the same time on a dummy."""
        if stored is None:
            await self._run("verify", password, self._dummy_hash)
            return False, None
        try:
            ok, new_hash = await self._run("verify_and_update", password, stored)
        except (ValueError, TypeError):
            return False, None
        return bool(ok), new_hash

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """Opaque secrets (refresh, cookie, ticket) are stored as SHA-256: they are random, so
    a fast hash is enough, and a database leak does not leak usable tokens."""
    return hashlib.sha256(secret.encode()).digest()


def same_digest(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored)


# Ids in credentials become bigint query parameters: anything outside that range is a forged
# or broken credential (401), never a database error.
MAX_DATABASE_ID = 2**63 - 1


def database_id(value: object) -> int:
    """A positive bigint from a credential, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not an id")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("not an id")
    number = int(value)
    if not 0 < number <= MAX_DATABASE_ID:
        raise ValueError("id out of range")
    return number


# `<bigint>.<uuid>.<43 chars>` is at most ~100 characters; anything much longer is not ours
# and is refused before it is parsed or hashed.
MAX_OPAQUE_TOKEN_CHARS = 200


@dataclass(frozen=True, slots=True)
class OpaqueToken:
    """Refresh tokens, cookies and tickets are `<tenant id>.<session uuid>.<secret>`: the
    prefix finds the row (inside its tenant), the secret proves possession."""

    tenant_id: int
    session_id: uuid.UUID
    secret: str

    def __str__(self) -> str:
        return f"{self.tenant_id}.{self.session_id}.{self.secret}"

    @classmethod
    def new(cls, tenant_id: int, session_id: uuid.UUID) -> OpaqueToken:
        return cls(tenant_id, session_id, new_secret())

    @classmethod
    def parse(cls, token: str) -> OpaqueToken | None:
        parts = token.split(".")
        if len(parts) != 3 or not parts[2] or len(token) > MAX_OPAQUE_TOKEN_CHARS:
            return None
        try:
            return cls(database_id(parts[0]), uuid.UUID(parts[1]), parts[2])
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    tenant_id: int
    role: str
    session_id: uuid.UUID
    expires_at: int


class TokenError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason  # "invalid_token" or "expired_token"
        super().__init__(reason)


class TokenCodec:
    """Access JWTs: HS256 keyed by the secret exactly as given, algorithm pinned."""

    def __init__(self, settings: AuthSettings) -> None:
        self._s = settings
        self._key = settings.jwt_secret.get_secret_value()

    def issue(
        self,
        *,
        user_id: int,
        tenant_id: int,
        role: str,
        session_id: uuid.UUID,
        now: float | None = None,
        ttl: int | None = None,
    ) -> tuple[str, int]:
        now = int(now if now is not None else time.time())
        exp = now + (ttl or self._s.access_ttl_seconds)
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "tid": tenant_id,
            "role": role,
            "sid": str(session_id),
            "iat": now,
            "exp": exp,
            "iss": self._s.issuer,
            "aud": self._s.audience,
            "typ": ACCESS_TYPE,
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(claims, self._key, algorithm=self._s.algorithm), exp

    def decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._s.algorithm],
                audience=self._s.audience,
                issuer=self._s.issuer,
                leeway=self._s.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired_token") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_token") from exc
        if claims.get("typ") != ACCESS_TYPE:
            raise TokenError("invalid_token")
        try:
            return AccessClaims(
                user_id=database_id(claims["sub"]),
                tenant_id=database_id(claims["tid"]),
                role=str(claims["role"]),
                session_id=uuid.UUID(str(claims["sid"])),
                expires_at=int(claims["exp"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise TokenError("invalid_token") from exc
