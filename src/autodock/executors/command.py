"""Run an argv from a rule: no shell, a timeout, bounded output, the exit code recorded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

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
    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        argv: list[str] = deploy.action["argv"]
        timeout: float = deploy.action.get("timeout") or 600.0
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=deploy.action.get("cwd") or None,
                env=child_environment(deploy),
                start_new_session=True,  # so a timeout can stop the whole process group
            )
        except OSError as exc:
            return DeployResult(
                DeployStatus.FAILED, error=f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            )
        await progress(f"running pid {proc.pid}")
        tail = bytearray()
        assert proc.stdout is not None

        async def pump() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(8192):
                tail.extend(chunk)
                if len(tail) > OUTPUT_LIMIT:
                    del tail[: len(tail) - OUTPUT_LIMIT]

        try:
            await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return DeployResult(
                DeployStatus.FAILED,
                output=_text(tail),
                error=f"timed out after {timeout:g}s; process group killed",
            )
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        output = _text(tail)
        if proc.returncode == 0:
            return DeployResult(DeployStatus.SUCCEEDED, output=output)
        reason = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode and proc.returncode < 0
            else f"exit code {proc.returncode}"
        )
        return DeployResult(DeployStatus.FAILED, output=output, error=f"command failed: {reason}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _text(data: bytearray) -> str:
    return data.decode("utf-8", errors="replace")
