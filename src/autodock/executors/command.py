"""Run an argv from a rule: no shell, a timeout, bounded output, the exit code recorded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading

from ..models import DeployRecord, DeployResult, DeployStatus
from .base import ProgressCallback

__all__ = ["PRIVATE_ENV_NAMES", "CommandExecutor", "child_environment"]

OUTPUT_LIMIT = 64 * 1024
# Secrets autodock itself reads from the environment are not passed on to commands.
_PRIVATE_ENV_PREFIXES = ("AUTODOCK_HTTP_AUTH", "AUTODOCK_SECRET", "AUTODOCK_API_TOKEN")
# Variables the config names as holding secrets (password_env, token env, hmac env).
PRIVATE_ENV_NAMES: set[str] = set()


def child_environment(deploy: DeployRecord) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_PRIVATE_ENV_PREFIXES) and k not in PRIVATE_ENV_NAMES
    }
    env.update(
        AUTODOCK_REPO=deploy.repo,
        AUTODOCK_TAG=deploy.tag,
        AUTODOCK_DIGEST=deploy.digest or "",
        AUTODOCK_REGISTRY=deploy.registry or "",
        AUTODOCK_PUSHER=deploy.pusher or "",
        AUTODOCK_DEPLOY_ID=str(deploy.id),
    )
    return env


class CommandExecutor:
    """Each command runs from a worker thread (spawn, read, wait), which keeps process
    management off the event loop that also serves the webhooks."""

    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._run, deploy, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _run(self, deploy: DeployRecord, cancelled: threading.Event) -> DeployResult:
        argv: list[str] = deploy.action["argv"]
        timeout: float = deploy.action.get("timeout") or 600.0
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=deploy.action.get("cwd") or None,
                env=child_environment(deploy),
                start_new_session=True,  # so a timeout can stop the whole process group
            )
        except OSError as exc:
            return DeployResult(
                DeployStatus.FAILED, error=f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            )
        tail = bytearray()
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, tail), daemon=True)
        reader.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            reader.join(5)
            return DeployResult(
                DeployStatus.FAILED,
                output=_text(tail),
                error=f"timed out after {timeout:g}s; process group killed",
            )
        finally:
            if cancelled.is_set():
                _kill_group(proc.pid)
        reader.join(5)
        output = _text(tail)
        if proc.returncode == 0:
            return DeployResult(DeployStatus.SUCCEEDED, output=output)
        reason = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exit code {proc.returncode}"
        )
        return DeployResult(DeployStatus.FAILED, output=output, error=f"command failed: {reason}")


def _pump(stream: object, tail: bytearray) -> None:
    """Keep the last OUTPUT_LIMIT bytes of the command's output."""
    read = stream.read1  # type: ignore[attr-defined]
    while chunk := read(8192):
        tail.extend(chunk)
        if len(tail) > OUTPUT_LIMIT:
            del tail[: len(tail) - OUTPUT_LIMIT]
    stream.close()  # type: ignore[attr-defined]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _text(data: bytearray) -> str:
    return data.decode("utf-8", errors="replace")
