"""Scheduled prod→stage database clones, run as deploys: queued durably, serialized per
job, recorded in history and notified like any other deploy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..models import DeployRecord, DeployResult, DeployStatus, PlannedDeploy, PushEvent
from ..reference import is_valid_tag
from ..store import Store
from .base import ProgressCallback

__all__ = ["CloneExecutor", "enqueue_clone"]

CLONE_REPO = "autodock/db-clone"


def _planned(job_name: str) -> PlannedDeploy:
    return PlannedDeploy(
        rule=f"db_clone:{job_name}",
        kind="clone",
        target=f"db:{job_name}",
        target_key=f"clone:{job_name}",
        action={"job": job_name},
    )


def enqueue_clone(store: Store, job_name: str) -> dict[str, Any]:
    """Queue a run of ``job_name`` (called by the scheduler when the job is due)."""
    tag = job_name if is_valid_tag(job_name) else "job"
    # One run per job and minute, even when several replicas' schedulers fire.
    slot = int(time.time() // 60)
    event = PushEvent(
        source="schedule", repo=CLONE_REPO, tag=tag, delivery_id=f"schedule:{job_name}:{slot}"
    )
    recorded = store.record_event(
        event, [_planned(job_name)], payload=None, now=time.time(), dedup_window=0
    )
    return {"job": job_name, "status": "queued", "deploys": recorded.deploy_ids}


class CloneExecutor:
    def __init__(self, db_clone_section: dict[str, Any] | None):
        self.section = db_clone_section or {}

    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        from ..db.schedule import load_jobs, run_job
        from ..db.urls import ProductionGuard

        name = deploy.action["job"]
        jobs = {job.name: job for job in load_jobs(self.section)}
        if name not in jobs:
            return DeployResult(DeployStatus.FAILED, error=f"no db_clone job named {name!r}")
        await progress(f"cloning ({name})")
        guard = ProductionGuard.from_config(self.section)
        record = await asyncio.to_thread(run_job, jobs[name], guard)
        summary = (
            f"{record.get('rows', 0)} rows, {record.get('bytes', 0)} bytes, "
            f"{len(record.get('tables') or [])} tables in {record.get('duration_s', 0):.1f}s"
        )
        if record.get("status") == "failed":
            return DeployResult(DeployStatus.FAILED, output=summary, error=record.get("error"))
        return DeployResult(DeployStatus.SUCCEEDED, output=summary)
