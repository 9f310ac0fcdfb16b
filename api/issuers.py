"""Tokens from the app's own identity provider (`auth.issuers`), verified like ours.

Each issuer's algorithms are pinned (an RSA/EC issuer never accepts HS256, so a public key can
never be used as an HMAC secret), `exp` is required, and `aud`/`iss` must match. JWKS keys are
cached; a token naming an unknown `kid` causes at most one refetch per
`auth.jwks_min_refresh_seconds` (never a fetch per token), without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from api.errors import ExpiredToken, InvalidToken
from api.settings import AuthSettings, IssuerSettings

log = logging.getLogger("switchboard.issuers")
JWKS_FETCH_TIMEOUT = 5.0


class JwksCache:
    def __init__(self, url: str, min_refresh: float) -> None:
        self.url = url
        self.min_refresh = min_refresh
        self.keys: dict[str | None, jwt.PyJWK] = {}
        self.fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        found = self.keys.get(kid)
        if found is not None:
            return found
        async with self._lock:  # one fetch at a time; the others then find the key
            if kid not in self.keys and time.monotonic() - self.fetched_at >= self.min_refresh:
                await self._fetch()
        found = self.keys.get(kid)
        if found is None:
            raise InvalidToken("the token's signing key is unknown")
        return found

    async def _fetch(self) -> None:
        self.fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=JWKS_FETCH_TIMEOUT) as http:
                r = await http.get(self.url)
                r.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(r.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("fetching the JWKS at %s failed: %s", self.url, exc)
            return  # keep the keys we had
        self.keys = {k.key_id: k for k in keys}
        if len(keys) == 1:
            self.keys.setdefault(None, keys[0])  # a lone key also serves tokens without kid


class ExternalIssuers:
    def __init__(self, settings: AuthSettings) -> None:
        self.own_issuer = settings.issuer
        self.leeway = settings.leeway_seconds
        self.by_iss = {i.issuer: i for i in settings.issuers if i.issuer != settings.issuer}
        self.jwks = {
            i.issuer: JwksCache(i.jwks_url, settings.jwks_min_refresh_seconds)
            for i in self.by_iss.values()
            if i.jwks_url
        }

    def issuer_of(self, token: str) -> IssuerSettings | None:
        """The configured issuer whose `iss` the (not yet verified) token claims, if any."""
        if not self.by_iss:
            return None
        try:
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return self.by_iss.get(iss) if isinstance(iss, str) else None

    async def verify(self, issuer: IssuerSettings, token: str) -> dict[str, Any]:
        try:
            key = await self._key(issuer, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(issuer.algorithms),
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken() from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        return claims

    async def _key(self, issuer: IssuerSettings, token: str) -> Any:
        if issuer.secret is not None:
            return issuer.secret.get_secret_value()
        if issuer.public_key is not None:
            return issuer.public_key
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        return await self.jwks[issuer.issuer].key(kid if isinstance(kid, str) else None)
