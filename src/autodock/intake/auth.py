"""HTTP basic auth for the webhook endpoints, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["BasicAuthenticator"]


class BasicAuthenticator:
    realm = "autodock"

    def __init__(self, username: str, password: str):
        # Digests of equal length make compare_digest's time independent of the input.
        self._user = hashlib.sha256(username.encode()).digest()
        self._password = hashlib.sha256(password.encode()).digest()

    def check(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        user_ok = hmac.compare_digest(hashlib.sha256(user.encode()).digest(), self._user)
        pass_ok = hmac.compare_digest(hashlib.sha256(password.encode()).digest(), self._password)
        return user_ok & pass_ok

    @property
    def challenge(self) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'
