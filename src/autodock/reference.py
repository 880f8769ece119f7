"""Docker image references: validation against Docker's reference grammar, and parsing.

The grammar (distribution/reference) in short::

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [domain "/"] path-component ["/" path-component]*
    tag       := [\\w][\\w.-]{0,127}

autodock is stricter than the grammar where a value reaches a command line or a
path: a tag may not contain ``..`` and nothing may start with ``-``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ImageRef",
    "InvalidReference",
    "is_valid_digest",
    "is_valid_domain",
    "is_valid_repo",
    "is_valid_tag",
    "parse_image",
    "short_digest",
    "validate_digest",
    "validate_repo",
    "validate_tag",
]

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}"

_PATH_RE = re.compile(rf"^{_PATH}\Z")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}\Z")
_TAG_RE = re.compile(rf"^{_TAG}\Z", re.ASCII)
_DIGEST_RE = re.compile(rf"^(?:{_DIGEST})\Z")
MAX_NAME_LENGTH = 255


class InvalidReference(ValueError):
    """A repository, tag or digest does not follow Docker's grammar."""


def is_valid_repo(repo: str) -> bool:
    """A repository path with an optional registry host: ``org/app``, ``host:5000/org/app``."""
    if not repo or len(repo) > MAX_NAME_LENGTH:
        return False
    domain, path = split_domain(repo)
    if domain is not None and not _DOMAIN_RE.match(domain):
        return False
    return bool(_PATH_RE.match(path))


def is_valid_domain(domain: str) -> bool:
    """A registry host: ``host``, ``host:5000``, ``[::1]:5000`` (no leading '-', no '..')."""
    return (
        isinstance(domain, str)
        and len(domain) <= MAX_NAME_LENGTH
        and bool(_DOMAIN_RE.match(domain))
    )


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag)) and ".." not in tag


def is_valid_digest(digest: str) -> bool:
    return bool(_DIGEST_RE.match(digest))


def validate_repo(repo: str) -> str:
    if not isinstance(repo, str) or not is_valid_repo(repo):
        raise InvalidReference(
            f"invalid repository name {_show(repo)}: use lowercase letters, digits and "
            "separators (. _ __ -), components joined by '/', optionally after a registry host"
        )
    return repo


def validate_tag(tag: str) -> str:
    if not isinstance(tag, str) or not is_valid_tag(tag):
        raise InvalidReference(
            f"invalid tag {_show(tag)}: a tag is 1-128 of [A-Za-z0-9_.-], starts with a "
            "letter, digit or '_', and contains no '..'"
        )
    return tag


def validate_digest(digest: str) -> str:
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise InvalidReference(f"invalid digest {_show(digest)}: expected sha256:<64 hex>")
    return digest


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def split_domain(name: str) -> tuple[str | None, str]:
    """Split ``host:5000/org/app`` into ``("host:5000", "org/app")``.

    The first component is a registry host only if it contains '.' or ':' or is
    'localhost' (Docker's own rule); otherwise the name is a Docker Hub path.
    """
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return None, name


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. ``domain`` is None for Docker Hub."""

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def hub_path(self) -> str:
        """The path as Docker Hub names it (``nginx`` is ``library/nginx``)."""
        if self.domain in (None, "docker.io", "index.docker.io", "registry-1.docker.io"):
            return self.path if "/" in self.path else f"library/{self.path}"
        return self.path

    def with_tag(self, tag: str, digest: str | None = None) -> ImageRef:
        return ImageRef(self.domain, self.path, tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_image(ref: str) -> ImageRef:
    """Parse ``[host[:port]/]path[:tag][@digest]``; raise InvalidReference if malformed."""
    if not isinstance(ref, str) or not ref:
        raise InvalidReference("empty image reference")
    name, _, digest = ref.partition("@")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    domain, path = split_domain(name)
    if domain is not None and not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry host in {_show(ref)}")
    if not _PATH_RE.match(path) or len(name) > MAX_NAME_LENGTH:
        raise InvalidReference(f"invalid image name in {_show(ref)}")
    if tag is not None:
        validate_tag(tag)
    if digest:
        validate_digest(digest)
    return ImageRef(domain, path, tag, digest or None)


def short_digest(digest: str | None) -> str:
    """``sha256:4f2c8e1b9a7d…`` → ``4f2c8e1b9a7d`` (12 hex), for logs and messages."""
    if not digest:
        return "-"
    return digest.split(":", 1)[-1][:12]
