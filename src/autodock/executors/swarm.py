"""Update a Swarm service through the Engine API and wait until it has converged.

A deploy pins ``name:tag@digest``, keeps the rest of the spec, and ends as
``succeeded`` (every task runs the new image and the update completed), ``unchanged``
(the service already ran that digest) or ``failed`` (paused, rolled back, tasks
failing, timed out; the tasks' error text is recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..exceptions import DeployError, TransientDeployError
from ..models import DeployRecord, DeployResult, DeployStatus
from ..planner import LabelledService
from ..policies import SEMVER_LEVELS, Hold, semver_hold
from ..reference import ImageRef, InvalidReference, parse_image, short_digest
from .base import ProgressCallback
from .checks import CheckResult, SmokeCheckSpec, check_from_labels, probe_url, run_check

__all__ = ["DockerConnection", "SwarmExecutor", "choose_image_name", "list_labelled_services"]

log = logging.getLogger("autodock.swarm")

FAILED_TASK_STATES = frozenset({"failed", "rejected", "orphaned"})
ROLLBACK_STATES = frozenset({"rollback_started", "rollback_paused", "rollback_completed"})


class DockerConnection:
    """A lazily created, shared Docker client; errors talking to it become transient."""

    def __init__(self, base_url: str | None = None, registries: dict[str, Any] | None = None):
        self._base_url = base_url
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self.registries = registries or {}
        self._logged_in: set[str] = set()

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    if self._base_url:
                        self._client = docker.DockerClient(base_url=self._base_url, timeout=60)
                    else:
                        self._client = docker.from_env(timeout=60)
                except docker.errors.DockerException as exc:
                    raise TransientDeployError(f"Docker engine unreachable: {exc}") from exc
            return self._client

    def reset(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None

    def auth_for(self, registry: str | None) -> dict[str, str] | None:
        creds = self.registries.get(registry or "docker.io")
        if creds is None:
            return None
        return {"username": creds.username, "password": creds.resolve_password() or ""}

    def ensure_login(self, registry: str | None) -> None:
        """Cache registry credentials in the client so the update carries X-Registry-Auth."""
        key = registry or "docker.io"
        auth = self.auth_for(registry)
        if auth is None or key in self._logged_in:
            return
        self.client.login(registry=key, **auth)
        self._logged_in.add(key)


def _engine_call(conn: DockerConnection, fn: Callable[[docker.DockerClient], Any]) -> Any:
    try:
        return fn(conn.client)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        conn.reset()
        raise TransientDeployError(f"Docker engine unreachable: {exc.__class__.__name__}") from exc
    except docker.errors.APIError as exc:
        if exc.status_code is not None and exc.status_code >= 500:
            raise TransientDeployError(f"Docker engine error: {exc.explanation or exc}") from exc
        raise


def choose_image_name(current: str | None, deploy: DeployRecord) -> str:
    """The name (no tag) to deploy: the action's override, else the service's own image
    name when it is the pushed repository (keeping its registry host, e.g. the one a
    worker node pulls from), else the pushed image's full name."""
    override = deploy.action.get("image")
    if override:
        return str(override)
    pushed = f"{deploy.registry}/{deploy.repo}" if deploy.registry else deploy.repo
    if current:
        try:
            ref = parse_image(current)
        except InvalidReference:
            return pushed
        if ref.path == deploy.repo or (
            deploy.registry is None and ref.hub_path == ImageRef(None, deploy.repo).hub_path
        ):
            return ref.name
    return pushed


@dataclass
class _Snapshot:
    state: str | None
    message: str
    desired: int
    running_new: int
    running_old: int
    failed_new: list[dict[str, Any]]


class SwarmExecutor:
    def __init__(
        self,
        connection: DockerConnection,
        *,
        poll_interval: float = 0.25,
        failure_threshold: int = 3,
        default_timeout: float = 300.0,
    ):
        self.conn = connection
        self.poll_interval = poll_interval
        self.failure_threshold = failure_threshold
        self.default_timeout = default_timeout

    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        name = deploy.action["service"]
        try:
            service = await asyncio.to_thread(self._inspect, name)
        except docker.errors.NotFound:
            return DeployResult(DeployStatus.FAILED, error=f"service {name!r} not found in swarm")
        spec = service["Spec"]
        current: str | None = spec["TaskTemplate"]["ContainerSpec"].get("Image")
        if deploy.action.get("pin"):
            return await self._set_image(service, deploy, current, deploy.action["pin"], progress)
        image_name = choose_image_name(current, deploy)
        digest = deploy.digest or await asyncio.to_thread(
            self._resolve_digest, f"{image_name}:{deploy.tag}", deploy.registry
        )
        new_ref = f"{image_name}:{deploy.tag}@{digest}"
        if current == new_ref:
            if deploy.attempts > 1 and deploy.progress:
                # An earlier attempt got as far as sending this update (progress is set just
                # before), then lost the engine: the update is not sent again; the retry
                # waits for it to converge as the first try would have, and reports that.
                await progress(f"resuming {name}: waiting for the update to converge")
                timeout = float(deploy.action.get("timeout") or self.default_timeout)
                outcome = await self._wait(service["ID"], name, new_ref, None, timeout, progress)
                outcome.new_image = new_ref
                return outcome
            return DeployResult(DeployStatus.UNCHANGED, old_image=current, new_image=new_ref)
        labels = spec.get("Labels") or {}
        hold = self._policy_hold(deploy, current, labels)
        if hold is not None and not (hold.approvable and _approved(deploy)):
            # A larger upgrade than the policy allows waits for a person; a downgrade or a
            # tag that is no version is refused outright.
            status = DeployStatus.AWAITING_APPROVAL if hold.approvable else DeployStatus.IGNORED
            return DeployResult(status, old_image=current, error=hold.reason)
        old = short_digest(_digest_of(current))
        await progress(f"updating {name}: {old} → {short_digest(digest)}")
        previous_status = (service.get("UpdateStatus") or {}).get("StartedAt")
        await asyncio.to_thread(self._update, service, new_ref, deploy.registry)
        timeout = float(deploy.action.get("timeout") or self.default_timeout)
        outcome = await self._wait(service["ID"], name, new_ref, previous_status, timeout, progress)
        outcome.old_image, outcome.new_image = current, new_ref
        check = _smoke_check(deploy, labels)
        if outcome.status is DeployStatus.SUCCEEDED and check is not None and current:
            outcome = await self._smoke_test(
                service["ID"], name, check, current, deploy, outcome, timeout, progress
            )
        return outcome

    async def _set_image(
        self,
        service: dict[str, Any],
        deploy: DeployRecord,
        current: str | None,
        ref: str,
        progress: ProgressCallback,
    ) -> DeployResult:
        """Put an exact image reference back (a group rollback): no policy, no check."""
        if current == ref:
            return DeployResult(DeployStatus.UNCHANGED, old_image=current, new_image=ref)
        name = service["Spec"]["Name"]
        await progress(f"restoring {name} to {ref}")
        previous_status = (service.get("UpdateStatus") or {}).get("StartedAt")
        await asyncio.to_thread(self._update, service, ref, deploy.registry)
        timeout = float(deploy.action.get("timeout") or self.default_timeout)
        outcome = await self._wait(service["ID"], name, ref, previous_status, timeout, progress)
        outcome.old_image, outcome.new_image = current, ref
        return outcome

    @staticmethod
    def _policy_hold(
        deploy: DeployRecord, current: str | None, labels: dict[str, str]
    ) -> Hold | None:
        level = deploy.action.get("semver") or labels.get("autodock.semver")
        if level not in SEMVER_LEVELS:
            return None
        current_tag = None
        if current:
            with contextlib.suppress(InvalidReference):
                current_tag = parse_image(current).tag
        return semver_hold(current_tag, deploy.tag, level)

    async def _smoke_test(
        self,
        service_id: str,
        name: str,
        check: SmokeCheckSpec,
        old_image: str,
        deploy: DeployRecord,
        outcome: DeployResult,
        timeout: float,
        progress: ProgressCallback,
    ) -> DeployResult:
        service = await asyncio.to_thread(self._inspect, service_id)
        url = probe_url(check, (service.get("Endpoint") or {}).get("Ports") or [])
        if url is None:
            result = CheckResult(False, "smoke check: no URL and no published port to probe")
        else:
            await progress(f"smoke check {url}")
            result = await run_check(check, url)
        if result.ok:
            outcome.output = f"{outcome.output or ''}\n{result.detail}".strip()
            return outcome
        await progress(f"smoke check failed; rolling back {name}")
        previous_status = (service.get("UpdateStatus") or {}).get("StartedAt")
        await asyncio.to_thread(self._update, service, old_image, deploy.registry)
        back = await self._wait(service_id, name, old_image, previous_status, timeout, progress)
        note = (
            "rolled back to the previous image"
            if back.status is DeployStatus.SUCCEEDED
            else f"rollback did not converge: {back.error}"
        )
        return DeployResult(
            DeployStatus.ROLLED_BACK
            if back.status is DeployStatus.SUCCEEDED
            else DeployStatus.FAILED,
            old_image=outcome.old_image,
            new_image=outcome.new_image,
            output=outcome.output,
            error=f"{result.detail}\n{note}",
        )

    # ------------------------------------------------------------ engine calls (threads)

    def _inspect(self, name: str) -> dict[str, Any]:
        return _engine_call(self.conn, lambda c: c.api.inspect_service(name))

    def _resolve_digest(self, image: str, registry: str | None) -> str:
        auth = self.conn.auth_for(registry)
        try:
            data = _engine_call(
                self.conn, lambda c: c.api.inspect_distribution(image, auth_config=auth)
            )
        except TransientDeployError as exc:
            raise TransientDeployError(f"cannot resolve digest of {image}: {exc}") from exc
        except docker.errors.APIError as exc:
            raise DeployError(
                f"cannot resolve digest of {image}: {exc.explanation or exc}"
            ) from exc
        digest = (data.get("Descriptor") or {}).get("digest")
        if not digest:
            raise DeployError(f"registry returned no digest for {image}")
        return str(digest)

    def _update(self, service: dict[str, Any], new_ref: str, registry: str | None) -> None:
        container_spec = dict(service["Spec"]["TaskTemplate"]["ContainerSpec"])
        container_spec["Image"] = new_ref

        def call(c: docker.DockerClient) -> Any:
            self.conn.ensure_login(registry)
            return c.api.update_service(
                service["ID"],
                service["Version"]["Index"],
                task_template={"ContainerSpec": container_spec},
                fetch_current_spec=True,
            )

        try:
            result = _engine_call(self.conn, call)
        except docker.errors.APIError as exc:
            if exc.status_code == 409 or "out of sequence" in str(exc):
                raise TransientDeployError(f"service changed during update: {exc}") from exc
            raise DeployError(f"service update rejected: {exc.explanation or exc}") from exc
        for warning in (result or {}).get("Warnings") or []:
            log.warning("engine warning for %s: %s", service["Spec"]["Name"], warning)

    def _snapshot(self, service_id: str, new_ref: str, previous_status: str | None) -> _Snapshot:
        def call(c: docker.DockerClient) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            listed = c.api.services(filters={"id": service_id}, status=True)
            if not listed:
                raise DeployError("service was removed during the deploy")
            return listed[0], c.api.tasks(filters={"service": service_id})

        service, tasks = _engine_call(self.conn, call)
        status = service.get("UpdateStatus") or {}
        fresh = status and status.get("StartedAt") != previous_status
        desired = (service.get("ServiceStatus") or {}).get("DesiredTasks")
        if desired is None:
            desired = (service["Spec"].get("Mode", {}).get("Replicated") or {}).get("Replicas", 1)
        running_new = running_old = 0
        failed_new = []
        for task in tasks:
            image = task["Spec"]["ContainerSpec"].get("Image")
            state = task["Status"]["State"]
            if image == new_ref:
                if state == "running" and task["DesiredState"] == "running":
                    running_new += 1
                elif state in FAILED_TASK_STATES:
                    failed_new.append(task)
            elif state == "running" and task["DesiredState"] == "running":
                running_old += 1
        return _Snapshot(
            state=status.get("State") if fresh else None,
            message=status.get("Message", "") if fresh else "",
            desired=int(desired),
            running_new=running_new,
            running_old=running_old,
            failed_new=failed_new,
        )

    # ------------------------------------------------------------ convergence

    async def _wait(
        self,
        service_id: str,
        name: str,
        new_ref: str,
        previous_status: str | None,
        timeout: float,
        progress: ProgressCallback,
        *,
        rollback: bool = False,
    ) -> DeployResult:
        """Until every task runs ``new_ref`` and swarm calls the update (or, with
        ``rollback``, the rollback to it) done; a failed result says why not."""
        what = "rollback" if rollback else "update"
        paused = {"paused", "rollback_paused"} if rollback else {"paused"}
        done = {None, "completed", "rollback_completed"} if rollback else {None, "completed"}
        image = "previous" if rollback else "new"
        verb = "rolled back" if rollback else "updated"
        deadline = time.monotonic() + timeout
        last_progress = ""
        # Poll fast at first (a small service converges within seconds), then settle at
        # poll_interval so long rollouts do not flood the engine.
        interval = min(0.05, self.poll_interval)
        while True:
            snap = await asyncio.to_thread(self._snapshot, service_id, new_ref, previous_status)
            text = f"{snap.running_new}/{snap.desired} tasks {verb}"
            if text != last_progress:
                await progress(text)
                last_progress = text
            if snap.state in paused:
                return _failed(f"{what} paused by swarm: {snap.message}", snap)
            if not rollback and snap.state in ROLLBACK_STATES:
                return _failed(
                    f"update failed and swarm rolled back ({snap.state}): {snap.message}", snap
                )
            # "updating" covers swarm's monitor period, when early crashes still count.
            if snap.state in done and snap.running_old == 0 and snap.running_new >= snap.desired:
                return DeployResult(DeployStatus.SUCCEEDED, output=text)
            if len(snap.failed_new) >= self.failure_threshold:
                return _failed(f"{len(snap.failed_new)} tasks of the {image} image failed", snap)
            if time.monotonic() >= deadline:
                return _failed(
                    f"timed out after {timeout:g}s waiting for the {what} of {name} ({text})",
                    snap,
                )
            await asyncio.sleep(interval)
            # Every task is on the new image: only swarm's verdict is missing, and it is
            # worth noticing at once.
            near = snap.running_new >= snap.desired
            interval = 0.05 if near else min(self.poll_interval, interval * 1.2)


def _approved(deploy: DeployRecord) -> bool:
    """Set by an approval (store.decide), read before the deploy's first progress."""
    return (deploy.progress or "").startswith("approved by ")


def _smoke_check(deploy: DeployRecord, labels: dict[str, str]) -> SmokeCheckSpec | None:
    configured = deploy.action.get("check")
    if configured:
        return SmokeCheckSpec.from_dict(configured)
    return check_from_labels(labels)


def _digest_of(image: str | None) -> str | None:
    return image.rpartition("@")[2] if image and "@" in image else None


def _task_errors(tasks: list[dict[str, Any]], limit: int = 5) -> str:
    lines = []
    for task in sorted(tasks, key=lambda t: t.get("UpdatedAt", ""), reverse=True)[:limit]:
        st = task["Status"]
        exit_code = (st.get("ContainerStatus") or {}).get("ExitCode")
        detail = st.get("Err") or st.get("Message") or st["State"]
        suffix = f" (exit code {exit_code})" if exit_code not in (None, 0) else ""
        lines.append(f"task {task['ID'][:12]} {st['State']}: {detail}{suffix}")
    return "\n".join(lines)


def _failed(reason: str, snap: _Snapshot) -> DeployResult:
    errors = _task_errors(snap.failed_new)
    return DeployResult(DeployStatus.FAILED, error=f"{reason}\n{errors}".strip())


def list_labelled_services(conn: DockerConnection) -> list[LabelledService]:
    """Services that opted in to zero-config deploys with the ``autodock.repo`` label."""
    services = _engine_call(conn, lambda c: c.api.services(filters={"label": "autodock.repo"}))
    out = []
    for svc in services:
        spec = svc["Spec"]
        labels = spec.get("Labels") or {}
        repo = labels.get("autodock.repo", "")
        tag = labels.get("autodock.tag")
        if tag is None:
            image = spec["TaskTemplate"]["ContainerSpec"].get("Image", "")
            try:
                tag = parse_image(image).tag or "latest"
            except InvalidReference:
                continue
        group = labels.get("autodock.group")
        if group == "stack":  # the services of one `docker stack deploy` roll back together
            group = labels.get("com.docker.stack.namespace")
        out.append(LabelledService(name=spec["Name"], repo=repo, tag=tag, group=group))
    return out
