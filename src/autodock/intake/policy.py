"""Who may call which webhook endpoint: the configuration models.

Each endpoint (``dockerhub`` — also ``/autodock/v1/`` —, ``registry``, ``generic``,
``quay``, ``harbor``, or ``*`` for the rest) gets an ``EndpointAuth``. A request passes
when its source address is allowed (``allow_cidrs``) and any one configured credential
checks out: basic (plain or an htpasswd file of bcrypt hashes), a bearer token, or an
HMAC-SHA256 signature over the raw body. ``open: true`` is the only way to accept
requests without a credential.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ..exceptions import ConfigError

__all__ = [
    "BasicCredentials",
    "EndpointAuth",
    "HmacAuth",
    "Network",
    "RateLimit",
    "SecretRef",
    "WebhookSecurity",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Network = Annotated[str, Field(description="an address or CIDR, e.g. 10.0.0.0/8")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(value: SecretStr | None, env: str | None, file: Path | None, what: str) -> str:
    if value is not None:
        secret = value.get_secret_value()
    elif env:
        secret = os.environ.get(env, "")
    elif file:
        try:
            secret = file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read {what} file {file}: {exc.strerror}") from exc
    else:
        secret = ""
    if not secret:
        raise ConfigError(f"{what} is empty (check its env variable or file)")
    return secret


class SecretRef(_Model):
    """A secret given inline (``value``), by environment variable, or by file."""

    value: SecretStr | None = None
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if sum(x is not None for x in (self.value, self.env, self.file)) != 1:
            raise ValueError("give exactly one of value, env, file")
        return self

    def resolve(self, what: str = "secret") -> str:
        return _read_secret(self.value, self.env, self.file, what)


class BasicCredentials(_Model):
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None

    def resolve(self) -> str:
        return _read_secret(self.password, self.password_env, self.password_file, "password")


class HmacAuth(_Model):
    """GitHub-style signatures: ``<header>: sha256=<hex hmac of the raw body>``."""

    secret: SecretRef
    header: str = Field("X-Hub-Signature-256", min_length=1)
    prefix: str = "sha256="


class EndpointAuth(_Model):
    basic: list[BasicCredentials] = Field(default_factory=list)
    htpasswd: Path | None = Field(None, description="file of user:bcrypt-hash lines")
    bearer: list[SecretRef] = Field(default_factory=list, description="accepted tokens")
    hmac: HmacAuth | None = None
    allow_cidrs: list[Network] = Field(
        default_factory=list, description="source addresses allowed; empty: any"
    )
    open: bool = Field(False, description="accept requests without a credential")

    @field_validator("allow_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for item in v:
            ipaddress.ip_network(item, strict=False)  # ValueError → a config error
        return v

    @model_validator(mode="after")
    def _something(self) -> EndpointAuth:
        has_credential = bool(self.basic or self.htpasswd or self.bearer or self.hmac)
        if self.open and has_credential:
            raise ValueError("open: true cannot be combined with credentials")
        if not (self.open or has_credential):
            raise ValueError(
                "give at least one of basic, htpasswd, bearer, hmac (or open: true to accept "
                "requests without credentials)"
            )
        return self

    def networks(self) -> list[_Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.allow_cidrs]


class RateLimit(_Model):
    failures: int = Field(10, ge=1, description="failed attempts allowed per source...")
    window: float = Field(60.0, gt=0, description="...within this many seconds")


class WebhookSecurity(_Model):
    endpoints: dict[str, EndpointAuth] = Field(
        default_factory=dict, description="per endpoint name (or '*'); overrides 'auth:'"
    )
    trusted_proxies: list[Network] = Field(
        default_factory=list, description="peers whose X-Forwarded-For is believed"
    )
    rate_limit: RateLimit = RateLimit()

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for item in v:
            ipaddress.ip_network(item, strict=False)
        return v
