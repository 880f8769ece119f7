"""Event + rules + discovered services → the deploys to queue. Pure: no I/O.

Every deploy gets a ``target_key``; deploys to one key run one at a time and a newer
push for a key supersedes the queued older one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from .config import SERVICE_NAME_RE, CommandAction, Config, ServiceAction
from .models import PlannedDeploy, PushEvent
from .rules import matches, render

__all__ = ["LabelledService", "plan"]


@dataclass(frozen=True)
class LabelledService:
    """A Swarm service that opted in with ``autodock.repo`` (and maybe ``autodock.tag``)."""

    name: str
    repo: str
    tag: str  # glob; defaults to the tag the service runs now
    group: str | None = None  # autodock.group: services that roll back together


def plan(
    event: PushEvent, config: Config, labelled: Iterable[LabelledService] = ()
) -> list[PlannedDeploy]:
    values = event.placeholders()
    planned: dict[str, PlannedDeploy] = {}
    for rule in config.rules:
        if not matches(rule, event):
            continue
        for index, action in enumerate(rule.all_actions()):
            deploy = _plan_action(rule.display_name, index, action, event, values, config)
            if deploy is not None and rule.group and deploy.kind == "service":
                deploy.action["group"] = rule.group
            if deploy is not None and rule.approval:
                deploy.action["approval"] = True
            if deploy is not None and rule.window:
                windows = [rule.window] if isinstance(rule.window, str) else rule.window
                deploy.action["window"] = {"cron": windows, "tz": rule.timezone}
            if deploy is not None:
                planned.setdefault(deploy.target_key, deploy)
    if config.discovery.labels:
        for svc in labelled:
            key = f"service:{svc.name}"
            if key in planned or not fnmatchcase(event.tag, svc.tag):
                continue
            if svc.repo in (event.repo, event.image_name):
                planned[key] = PlannedDeploy(
                    rule=f"label:{svc.name}",
                    kind="service",
                    target=svc.name,
                    target_key=key,
                    action={
                        "service": svc.name,
                        "image": None,
                        "timeout": None,
                        "group": svc.group,
                    },
                )
    return list(planned.values())


def _plan_action(
    rule_name: str,
    index: int,
    action: ServiceAction | CommandAction,
    event: PushEvent,
    values: dict[str, str],
    config: Config,
) -> PlannedDeploy | None:
    if isinstance(action, ServiceAction):
        service = render(action.service, values)
        if not SERVICE_NAME_RE.match(service):
            return None  # a placeholder produced no valid name; nothing sensible to update
        image = render(action.image, values) if action.image else None
        return PlannedDeploy(
            rule=rule_name,
            kind="service",
            target=service,
            target_key=f"service:{service}",
            action={
                "service": service,
                "image": image,
                "timeout": action.timeout or config.deploy_timeout,
                "check": action.check.model_dump() if action.check else None,
                "semver": action.semver,
            },
        )
    argv = [render(arg, values) for arg in action.command]
    name = action.name or f"{rule_name}: {' '.join(action.command[:1])}"
    # Pushes of one repo:tag to one command are serialized; other tags run independently.
    scope = hashlib.sha1(f"{rule_name}#{index}".encode(), usedforsecurity=False).hexdigest()[:10]
    return PlannedDeploy(
        rule=rule_name,
        kind="command",
        target=name,
        target_key=f"command:{scope}:{event.image_name}:{event.tag}",
        action={
            "argv": argv,
            "timeout": action.timeout or config.command_timeout,
            "cwd": action.cwd,
            "idempotent": action.idempotent,
        },
    )
