"""The nouns of autodock: a push event, a planned deploy, a recorded deploy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .reference import parse_image

__all__ = [
    "WAITING",
    "DeployRecord",
    "DeployResult",
    "DeployStatus",
    "EventStatus",
    "PlannedDeploy",
    "PushEvent",
]


class EventStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # matched at least one rule; deploys were queued
    IGNORED = "ignored"  # matched no rule; kept for the record
    DUPLICATE = "duplicate"  # a redelivery of an event already stored (never stored twice)


class DeployStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # a newer push for the same target arrived before it ran
    UNCHANGED = "unchanged"  # the target already ran that exact image
    IGNORED = "ignored"  # held back by a policy (the reason is in the error)
    ROLLED_BACK = "rolled_back"  # deployed, failed its smoke check, old image restored
    AWAITING_APPROVAL = "awaiting_approval"  # its rule needs a person to approve it
    REJECTED = "rejected"  # a person said no

    @property
    def final(self) -> bool:
        return self not in (
            DeployStatus.QUEUED,
            DeployStatus.RUNNING,
            DeployStatus.AWAITING_APPROVAL,
        )


@dataclass(frozen=True)
class PushEvent:
    """One image push, normalised from whatever payload announced it.

    ``repo`` is the repository path (``org/app``); ``registry`` the host[:port] it was
    pushed to, or None for Docker Hub.
    """

    source: str
    repo: str
    tag: str
    registry: str | None = None
    digest: str | None = None
    pusher: str | None = None
    pushed_at: float | None = None
    delivery_id: str | None = None
    callback_url: str | None = None

    @classmethod
    def of_image(
        cls,
        image: str,
        source: str,
        *,
        pusher: str | None = None,
        delivery_id: str | None = None,
    ) -> PushEvent:
        """The event that puts ``image`` (``[host/]org/app[:tag][@digest]``) in place: for
        rollbacks and reverts. Raises InvalidReference for a malformed image."""
        ref = parse_image(image)
        return cls(
            source=source,
            repo=ref.path,
            tag=ref.tag or "latest",
            registry=ref.domain,
            digest=ref.digest,
            pusher=pusher,
            delivery_id=delivery_id,
        )

    @property
    def namespace(self) -> str:
        return self.repo.rsplit("/", 1)[0] if "/" in self.repo else "library"

    @property
    def name(self) -> str:
        return self.repo.rsplit("/", 1)[-1]

    @property
    def image_name(self) -> str:
        """The name to pull: ``host:port/org/app`` or, for Docker Hub, ``org/app``."""
        return f"{self.registry}/{self.repo}" if self.registry else self.repo

    def placeholders(self) -> dict[str, str]:
        """Values for the legacy ``${...}`` placeholders (and a few new ones)."""
        return {
            "repository.repo_name": self.repo,
            "repository.name": self.name,
            "repository.namespace": self.namespace,
            "repository.owner": self.namespace,
            "push_data.tag": self.tag,
            "push_data.pusher": self.pusher or "",
            "push_data.pushed_at": str(int(self.pushed_at)) if self.pushed_at else "",
            "image": self.image_name,
            "digest": self.digest or "",
            "registry": self.registry or "",
        }


@dataclass(frozen=True)
class PlannedDeploy:
    """What one matched rule wants done for an event; becomes one deploy row."""

    rule: str
    kind: str  # "service" | "command"
    target: str  # service name, or a readable name of the command
    target_key: str  # deploys to one key are serialized and coalesced
    action: dict[str, Any] = field(default_factory=dict)

    @property
    def initial_status(self) -> DeployStatus:
        if self.action.get("approval"):
            return DeployStatus.AWAITING_APPROVAL
        return DeployStatus.QUEUED


# Statuses a newer push for the same target replaces (latest wins).
WAITING = (DeployStatus.QUEUED, DeployStatus.AWAITING_APPROVAL)


@dataclass
class DeployResult:
    status: DeployStatus
    old_image: str | None = None
    new_image: str | None = None
    output: str | None = None
    error: str | None = None


@dataclass
class DeployRecord:
    id: int
    event_id: int
    rule: str
    kind: str
    target: str
    target_key: str
    action: dict[str, Any]
    status: DeployStatus
    attempts: int
    created_at: float
    repo: str = ""
    tag: str = ""
    digest: str | None = None
    registry: str | None = None
    pusher: str | None = None
    source: str = ""
    callback_url: str | None = None
    old_image: str | None = None
    new_image: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    output: str | None = None
    error: str | None = None
    superseded_by: int | None = None
    progress: str | None = None

    @property
    def event(self) -> PushEvent:
        return PushEvent(
            source=self.source,
            repo=self.repo,
            tag=self.tag,
            registry=self.registry,
            digest=self.digest,
            pusher=self.pusher,
            callback_url=self.callback_url,
        )

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "rule": self.rule,
            "kind": self.kind,
            "target": self.target,
            "status": str(self.status),
            "attempts": self.attempts,
            "repo": self.repo,
            "tag": self.tag,
            "digest": self.digest,
            "registry": self.registry,
            "pusher": self.pusher,
            "source": self.source,
            "old_image": self.old_image,
            "new_image": self.new_image,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "output": self.output,
            "error": self.error,
            "superseded_by": self.superseded_by,
            "progress": self.progress,
        }
