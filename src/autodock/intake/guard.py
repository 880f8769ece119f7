"""The gate in front of every webhook: client address, rate limit, allowlist, credentials,
per-source queue bound. Secrets are compared in constant time and never logged.

A request goes through two phases. ``check_request`` runs before the body is read
(address, failure rate limit, CIDR allowlist, basic/bearer credentials, queue bound);
``check_body`` runs on the raw body (HMAC signatures).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..config import BasicAuth, Config
from ..exceptions import ConfigError, StoreError
from .policy import EndpointAuth

__all__ = [
    "ApiGate",
    "Denied",
    "FailureLimiter",
    "HtpasswdFile",
    "Policy",
    "WebhookGuard",
    "client_address",
    "load_htpasswd",
    "secret_env_names",
]

log = logging.getLogger("autodock.intake.guard")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
QUEUE_COUNT_TTL = 1.0  # seconds a queued-work count is reused


def secret_env_names(config: Config) -> set[str]:
    """Environment variables the config reads secrets from (kept from commands' env)."""
    names: set[str] = set()
    auths: list[Any] = [config.auth, *config.webhooks.endpoints.values()]
    for auth in auths:
        if isinstance(auth, BasicAuth) and auth.password_env:
            names.add(auth.password_env)
        elif isinstance(auth, EndpointAuth):
            names.update(b.password_env for b in auth.basic if b.password_env)
            names.update(t.env for t in auth.bearer if t.env)
            if auth.hmac is not None and auth.hmac.secret.env:
                names.add(auth.hmac.secret.env)
    names.update(r.password_env for r in config.registries.values() if r.password_env)
    return names


def _digest(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).digest()


def _any_equal(candidate: bytes, accepted: Iterable[bytes]) -> bool:
    """Compare against every accepted digest (no early exit), each in constant time."""
    found = False
    for item in accepted:
        found |= hmac.compare_digest(candidate, item)
    return found


def is_bcrypt_hash(value: str) -> bool:
    return value.startswith(_BCRYPT_PREFIXES) and len(value) == 60


def load_htpasswd(path: Path) -> dict[str, bytes]:
    """``user:$2y$…`` lines (``htpasswd -B``); other hash kinds are refused."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read htpasswd file {path}: {exc.strerror}") from exc
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not is_bcrypt_hash(hashed):
            raise ConfigError(
                f"{path}: line {number}: expected user:<bcrypt hash> (htpasswd -B); "
                "other hash kinds are not accepted"
            )
        users[user] = hashed.encode()
    if not users:
        raise ConfigError(f"{path}: no users")
    return users


class HtpasswdFile:
    """bcrypt checks, with a small cache of recent successes (bcrypt is slow on purpose)."""

    def __init__(self, users: dict[str, bytes], cache_size: int = 256):
        import bcrypt  # optional until an htpasswd file is configured

        self._bcrypt = bcrypt
        self._users = users
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        # A hash of the users' cost, so an unknown user costs as much time as a known one.
        rounds = max(int(h.split(b"$")[2]) for h in users.values())
        self._dummy = bcrypt.hashpw(b"autodock-dummy", bcrypt.gensalt(rounds))

    def check(self, user: str, password: str) -> bool:
        key = _digest(f"{user}\0{password}")
        if key in self._ok:
            self._ok.move_to_end(key)
            return True
        hashed = self._users.get(user)
        try:
            ok = self._bcrypt.checkpw(password.encode(), hashed or self._dummy)
        except ValueError:
            ok = False
        ok = ok and hashed is not None
        if ok:
            self._ok[key] = None
            if len(self._ok) > self._cache_size:
                self._ok.popitem(last=False)
        return ok


@dataclass
class Policy:
    """One endpoint's resolved rules (secrets read once, kept as digests where possible)."""

    name: str
    open: bool = False
    networks: list[IPNetwork] = field(default_factory=list)
    basic: list[tuple[bytes, bytes]] = field(default_factory=list)
    htpasswd: HtpasswdFile | None = None
    bearer: list[bytes] = field(default_factory=list)
    hmac_key: bytes | None = None
    hmac_header: str = "X-Hub-Signature-256"
    hmac_prefix: str = "sha256="

    @property
    def header_credentials(self) -> bool:
        return bool(self.basic or self.htpasswd or self.bearer)

    @property
    def challenge(self) -> str:
        if self.basic or self.htpasswd:
            return 'Basic realm="autodock", charset="UTF-8"'
        if self.bearer:
            return 'Bearer realm="autodock"'
        return 'Signature realm="autodock"'

    @classmethod
    def from_config(cls, name: str, auth: EndpointAuth | BasicAuth) -> Policy:
        if isinstance(auth, BasicAuth):
            password = auth.resolve_password()
            if not password:
                raise ConfigError("auth: the password is empty (check password_env/password_file)")
            return cls(name, basic=[(_digest(auth.username), _digest(password))])
        policy = cls(name, open=auth.open, networks=auth.networks())
        for cred in auth.basic:
            policy.basic.append((_digest(cred.username), _digest(cred.resolve())))
        if auth.htpasswd is not None:
            policy.htpasswd = HtpasswdFile(load_htpasswd(auth.htpasswd))
        policy.bearer = [_digest(t.resolve("bearer token")) for t in auth.bearer]
        if auth.hmac is not None:
            policy.hmac_key = auth.hmac.secret.resolve("hmac secret").encode()
            policy.hmac_header = auth.hmac.header
            policy.hmac_prefix = auth.hmac.prefix
        return policy

    def allows_address(self, address: IPAddress | None) -> bool:
        if not self.networks:
            return True
        return address is not None and any(address in net for net in self.networks)

    def check_headers(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and self.bearer:
            return _any_equal(_digest(value), self.bearer)
        if scheme != "basic" or not (self.basic or self.htpasswd):
            return False
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        if self.basic:
            pair = _digest(user) + _digest(password)
            if _any_equal(pair, [u + p for u, p in self.basic]):
                return True
        return self.htpasswd is not None and self.htpasswd.check(user, password)

    def check_signature(self, signature: str | None, body: bytes) -> bool:
        if self.hmac_key is None or not signature:
            return False
        signature = signature.strip()
        if not signature.startswith(self.hmac_prefix):
            return False
        expected = hmac.new(self.hmac_key, body, hashlib.sha256).hexdigest()
        given = signature[len(self.hmac_prefix) :].lower()
        return hmac.compare_digest(_digest(given), _digest(expected))


class FailureLimiter:
    """After ``failures`` failed attempts from one source within ``window`` seconds, that
    source is refused (429) until the oldest failure leaves the window."""

    def __init__(self, failures: int, window: float, max_sources: int = 10_000):
        self.failures = failures
        self.window = window
        self.max_sources = max_sources
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._seen.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[key]
            return None
        return times

    def retry_after(self, key: str, now: float) -> float | None:
        times = self._recent(key, now)
        if times is None or len(times) < self.failures:
            return None
        return max(0.0, times[0] + self.window - now)

    def failed(self, key: str, now: float) -> None:
        times = self._recent(key, now)
        if times is None:
            times = self._seen[key] = deque(maxlen=self.failures)
            while len(self._seen) > self.max_sources:
                self._seen.popitem(last=False)
        self._seen.move_to_end(key)
        times.append(now)


def _ip(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: list[str], trusted: list[IPNetwork]
) -> IPAddress | None:
    """The client's address: the peer, unless the peer is a trusted proxy; then walk
    X-Forwarded-For right to left and take the first hop that is not a trusted proxy."""
    address = _ip(peer)
    if address is None or not any(address in net for net in trusted):
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_address = _ip(hop)
        if hop_address is None:
            return address  # garbage: believe nothing further left
        address = hop_address
        if not any(address in net for net in trusted):
            return address
    return address


@dataclass
class Denied:
    response: JSONResponse
    reason: str  # metrics label: unauthorized | forbidden | rate_limited | queue_full


def _deny(status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> Denied:
    return Denied(JSONResponse({"error": message}, status_code=status, headers=headers), reason)


class WebhookGuard:
    def __init__(self, config: Config, endpoints: Iterable[str]):
        sec = config.webhooks
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in sec.trusted_proxies]
        self.limiter = FailureLimiter(sec.rate_limit.failures, sec.rate_limit.window)
        self.max_queued = config.max_queued_per_source
        self._queued_cache: dict[str, tuple[float, int]] = {}
        self.policies: dict[str, Policy] = {}
        missing = []
        for name in endpoints:
            auth: Any = sec.endpoints.get(name) or sec.endpoints.get("*") or config.auth
            if auth is None:
                missing.append(name)
            elif auth == "none":
                self.policies[name] = Policy(name, open=True)
            else:
                self.policies[name] = Policy.from_config(name, auth)
        self.api_policy: Policy | None = None
        if "api" in sec.endpoints:
            if sec.endpoints["api"].hmac is not None:
                raise ConfigError("webhooks.endpoints.api: hmac needs a body; use basic or bearer")
            self.api_policy = Policy.from_config("api", sec.endpoints["api"])
        unknown = set(sec.endpoints) - set(endpoints) - {"*", "api"}
        if unknown:
            raise ConfigError(
                f"webhooks.endpoints: unknown endpoint(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(endpoints)}, api, *"
            )
        if missing:
            raise ConfigError(
                "no webhook credentials configured for "
                + ", ".join(missing)
                + ": pass --http-auth-user/--http-auth-pass "
                "(or AUTODOCK_HTTP_AUTH_USER/AUTODOCK_HTTP_AUTH_PASS, or --http-auth-file), set "
                "'auth:' or 'webhooks.endpoints' in the config, or pass --insecure-no-auth to "
                "accept anyone's webhooks"
            )

    def client(self, request: Request) -> IPAddress | None:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self.trusted)

    def _failed(self, key: str, policy: Policy, why: str, status: int = 401) -> Denied:
        self.limiter.failed(key, time.monotonic())
        log.warning("refused %s webhook from %s: %s", policy.name, key, why)
        if status == 403:
            return _deny(403, "source address not allowed", "forbidden")
        return _deny(
            401, "authentication required", "unauthorized", {"WWW-Authenticate": policy.challenge}
        )

    async def _admit(self, request: Request, policy: Policy) -> Denied | None:
        """Rate limit, allowlist and header credentials; sets ``request.state``."""
        address = self.client(request)
        key = str(address) if address is not None else "unknown"
        request.state.client_key = key
        wait = self.limiter.retry_after(key, time.monotonic())
        if wait is not None:
            return _deny(
                429,
                "too many failed attempts; retry later",
                "rate_limited",
                {"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        if not policy.allows_address(address):
            return self._failed(key, policy, "address not in allow_cidrs", 403)
        authorization = request.headers.get("authorization")
        if policy.open:
            ok = True
        elif not policy.header_credentials:
            ok = False
        elif policy.htpasswd is not None:  # bcrypt is slow on purpose: off the event loop
            ok = await asyncio.to_thread(policy.check_headers, authorization)
        else:
            ok = policy.check_headers(authorization)
        request.state.authenticated = ok
        if not ok and policy.hmac_key is None:
            return self._failed(key, policy, "missing or wrong credentials")
        return None

    async def check_api(self, request: Request) -> Denied | None:
        """The read API, when ``webhooks.endpoints.api`` is configured."""
        if self.api_policy is None:
            return None
        return await self._admit(request, self.api_policy)

    async def check_request(self, request: Request, endpoint: str, store: Any) -> Denied | None:
        """Before the body: address, rate limit, allowlist, header credentials, queue bound."""
        policy = self.policies[endpoint]
        denied = await self._admit(request, policy)
        if denied is not None:
            return denied
        key = request.state.client_key
        if not request.state.authenticated:  # only a body signature can still pass
            signature = request.headers.get(policy.hmac_header)
            if not signature or not signature.strip().startswith(policy.hmac_prefix):
                return self._failed(key, policy, f"no {policy.hmac_header} signature")
        queued = await self._queued(store, endpoint)
        if queued >= self.max_queued:
            return _deny(
                429,
                f"too much queued work from {endpoint} (max_queued_per_source "
                f"{self.max_queued}); retry later",
                "queue_full",
                {"Retry-After": "10"},
            )
        return None

    async def _queued(self, store: Any, endpoint: str) -> int:
        """Queued deploys from ``endpoint``, counted at most once a second: counting is a
        scan of the queue, and the bound need not be exact to protect the server."""
        now = time.monotonic()
        cached = self._queued_cache.get(endpoint)
        if cached is not None and now - cached[0] < QUEUE_COUNT_TTL:
            return cached[1]
        count = getattr(store, "count_queued", None)  # stores without it: no bound
        try:
            queued = await asyncio.to_thread(count, endpoint) if count is not None else 0
        except StoreError:
            queued = 0  # recording the event will answer 503 if the store is really down
        self._queued_cache[endpoint] = (now, queued)
        return int(queued)

    def note_queued(self, endpoint: str, deploys: int) -> None:
        """Count deploys queued since the last scan, so the cached count stays exact
        for the requests this server answers."""
        cached = self._queued_cache.get(endpoint)
        if cached is not None and deploys:
            self._queued_cache[endpoint] = (cached[0], cached[1] + deploys)

    def check_body(self, request: Request, endpoint: str, body: bytes) -> Denied | None:
        """After the body: the HMAC signature, when headers did not authenticate already."""
        if getattr(request.state, "authenticated", False):
            return None
        policy = self.policies[endpoint]
        if policy.check_signature(request.headers.get(policy.hmac_header), body):
            return None
        return self._failed(request.state.client_key, policy, "bad signature")


class ApiGate:
    """ASGI middleware: ``/api/…`` and ``/metrics`` need the ``api`` policy when one is
    configured (``/healthz`` stays open for orchestrators' health checks)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/api/") or path == "/metrics":
            guard = getattr(scope["app"].state.ctx, "guard", None)
            if guard is not None:
                denied = await guard.check_api(Request(scope))
                if denied is not None:
                    await denied.response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
