"""Webhook bodies → ``PushEvent``s. Pure: bytes in, events out, PayloadError on bad input.

Each parser validates every field that can reach a command line or the Engine API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ..exceptions import PayloadError
from ..models import PushEvent
from ..reference import (
    InvalidReference,
    is_valid_domain,
    is_valid_repo,
    parse_image,
    split_domain,
    validate_digest,
    validate_tag,
)

__all__ = ["PARSERS", "ParseResult", "parse_json", "parse_registry_host"]

MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
_PUSHER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}\Z")
_DELIVERY_RE = re.compile(r"^[A-Za-z0-9_.:/@+=-]{1,200}\Z")
_CALLBACK_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[\x21-\x7e]{0,1000}\Z")

ParseResult = tuple[list[PushEvent], int]  # (deployable pushes, events skipped as not pushes)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("body is nested too deeply") from None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object")
    return value


def _str(container: dict[str, Any], key: str, what: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what}.{key} is required and must be a non-empty string")
    return value


def _repo(value: str) -> str:
    if not is_valid_repo(value) or split_domain(value)[0] is not None:
        raise PayloadError(
            f"invalid repository name {value[:80]!r}: lowercase path components such as org/app"
        )
    return value


def _tag(value: str) -> str:
    try:
        return validate_tag(value)
    except InvalidReference as exc:
        raise PayloadError(str(exc)) from None


def _digest(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return validate_digest(value)
    except InvalidReference as exc:
        raise PayloadError(str(exc)) from None


def _pusher(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _PUSHER_RE.match(value):
        raise PayloadError("pusher must be a user name ([A-Za-z0-9_.@+-], at most 128)")
    return value


def _delivery(value: Any) -> str | None:
    if isinstance(value, str) and _DELIVERY_RE.match(value):
        return value
    return None


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < 1e11 else None


def parse_registry_host(value: Any) -> str | None:
    if isinstance(value, str) and is_valid_domain(value):
        return value
    return None


def parse_dockerhub(payload: Any) -> ParseResult:
    """Docker Hub's push webhook: ``repository.repo_name`` + ``push_data.tag``."""
    body = _obj(payload, "body")
    repository = _obj(body.get("repository"), "repository")
    push_data = _obj(body.get("push_data"), "push_data")
    repo = _repo(_str(repository, "repo_name", "repository"))
    tag = _tag(_str(push_data, "tag", "push_data"))
    callback = body.get("callback_url")
    if callback is not None and not (isinstance(callback, str) and _CALLBACK_RE.match(callback)):
        raise PayloadError("callback_url must be an http(s) URL (printable ASCII, ≤ 1000)")
    event = PushEvent(
        source="dockerhub",
        repo=repo,
        tag=tag,
        digest=None,
        pusher=_pusher(push_data.get("pusher")),
        pushed_at=_timestamp(push_data.get("pushed_at")),
        delivery_id=f"dockerhub:{callback}" if callback else None,
        callback_url=callback,
    )
    return [event], 0


def parse_registry(payload: Any) -> ParseResult:
    """A Registry v2 notification envelope; only manifest pushes with a tag deploy."""
    body = _obj(payload, "body")
    events = body.get("events")
    if not isinstance(events, list):
        raise PayloadError("body.events must be a list (a Registry v2 notification envelope)")
    pushes: list[PushEvent] = []
    skipped = 0
    for i, raw in enumerate(events):
        item = _obj(raw, f"events[{i}]")
        target = _obj(item.get("target", {}), f"events[{i}].target")
        if (
            item.get("action") != "push"
            or not isinstance(target.get("mediaType"), str)
            or target.get("mediaType") not in MANIFEST_MEDIA_TYPES
            or not target.get("tag")
        ):
            skipped += 1
            continue
        where = f"events[{i}].target"
        request = item.get("request") if isinstance(item.get("request"), dict) else {}
        actor = item.get("actor") if isinstance(item.get("actor"), dict) else {}
        event_id = _delivery(item.get("id"))
        pushes.append(
            PushEvent(
                source="registry",
                repo=_repo(_str(target, "repository", where)),
                tag=_tag(_str(target, "tag", where)),
                registry=parse_registry_host(request.get("host")),
                digest=_digest(target.get("digest")),
                pusher=_pusher(actor.get("name")),
                delivery_id=f"registry:{event_id}" if event_id else None,
            )
        )
    return pushes, skipped


def parse_generic(payload: Any) -> ParseResult:
    """The simplest shape, for scripts and registries without a parser of their own:
    ``{"image": "host/org/app:tag[@digest]"}`` or ``{"repo", "tag", "digest"?, "registry"?}``.
    """
    body = _obj(payload, "body")
    if "image" in body:
        try:
            ref = parse_image(_str(body, "image", "body"))
        except InvalidReference as exc:
            raise PayloadError(str(exc)) from None
        if not ref.tag:
            raise PayloadError("body.image needs a tag (org/app:tag)")
        registry, repo, tag, digest = ref.domain, ref.path, ref.tag, ref.digest
    else:
        repo = _repo(_str(body, "repo", "body"))
        tag = _tag(_str(body, "tag", "body"))
        digest = _digest(body.get("digest"))
        registry = body.get("registry")
        if registry is not None and parse_registry_host(registry) is None:
            raise PayloadError("body.registry must be host[:port]")
    event = PushEvent(
        source="generic",
        repo=repo,
        tag=tag,
        registry=registry,
        digest=digest,
        pusher=_pusher(body.get("pusher")),
        delivery_id=_delivery(body.get("id")),
    )
    return [event], 0


def parse_quay(payload: Any) -> ParseResult:
    """Quay's repository push notification: ``docker_url`` + ``updated_tags``."""
    body = _obj(payload, "body")
    docker_url = _str(body, "docker_url", "body")
    try:
        ref = parse_image(docker_url)
    except InvalidReference as exc:
        raise PayloadError(str(exc)) from None
    tags = body.get("updated_tags")
    if not isinstance(tags, list) or not tags:
        raise PayloadError("body.updated_tags must be a non-empty list")
    pushes = [
        PushEvent(source="quay", repo=ref.path, tag=_tag(t), registry=ref.domain)
        for t in tags
        if isinstance(t, str)
    ]
    return pushes, 0


def parse_harbor(payload: Any) -> ParseResult:
    """Harbor's ``PUSH_ARTIFACT`` webhook (default JSON format)."""
    body = _obj(payload, "body")
    if body.get("type") != "PUSH_ARTIFACT":
        return [], 1
    data = _obj(body.get("event_data"), "event_data")
    resources = data.get("resources")
    if not isinstance(resources, list):
        raise PayloadError("event_data.resources must be a list")
    pushes = []
    for i, raw in enumerate(resources):
        res = _obj(raw, f"resources[{i}]")
        if not res.get("tag"):
            continue
        try:
            ref = parse_image(_str(res, "resource_url", f"resources[{i}]"))
        except InvalidReference as exc:
            raise PayloadError(str(exc)) from None
        pushes.append(
            PushEvent(
                source="harbor",
                repo=ref.path,
                tag=_tag(res["tag"]),
                registry=ref.domain,
                digest=_digest(res.get("digest")),
                pusher=_pusher(body.get("operator")),
            )
        )
    return pushes, 0


PARSERS: dict[str, Callable[[Any], ParseResult]] = {
    "dockerhub": parse_dockerhub,
    "registry": parse_registry,
    "generic": parse_generic,
    "quay": parse_quay,
    "harbor": parse_harbor,
}
