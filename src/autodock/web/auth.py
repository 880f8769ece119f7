"""Bearer-token checks for the HTTP API (``api:`` in the config), in constant time.

Actions always need the token; read-only endpoints need it when ``api.read: token``.
The SSE stream also accepts ``?token=`` because browsers' EventSource sends no headers.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request

from ..context import AppContext

__all__ = ["TokenChecker", "require_action_token", "require_read_token", "token_checker"]


class TokenChecker:
    def __init__(self, token: str | None):
        self._digest = hashlib.sha256(token.encode()).digest() if token else None

    @property
    def configured(self) -> bool:
        return self._digest is not None

    def check(self, authorization: str | None, query_token: str | None = None) -> bool:
        if self._digest is None:
            return False
        given = query_token
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                given = value.strip()
        if not given:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)


def token_checker(request: Request) -> TokenChecker:
    """The app's checker, built once from the config (env and file are read at first use)."""
    checker: TokenChecker | None = getattr(request.app.state, "api_token_checker", None)
    if checker is None:
        ctx: AppContext = request.app.state.ctx
        checker = TokenChecker(ctx.config.api.resolve_token())
        request.app.state.api_token_checker = checker
    return checker


def _demand(request: Request, *, allow_query: bool) -> None:
    checker = token_checker(request)
    if not checker.configured:
        raise HTTPException(
            403,
            "the API token is not configured: set api.token_env, api.token_file or api.token",
        )
    query = request.query_params.get("token") if allow_query else None
    if not checker.check(request.headers.get("authorization"), query):
        raise HTTPException(
            401, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
        )


async def require_action_token(request: Request) -> None:
    _demand(request, allow_query=False)


async def require_read_token(request: Request) -> None:
    ctx: AppContext = request.app.state.ctx
    if ctx.config.api.read == "token":
        _demand(request, allow_query=True)
