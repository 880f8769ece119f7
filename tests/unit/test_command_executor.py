import asyncio
import sys

from autodock.executors.command import CommandExecutor
from autodock.models import DeployRecord, DeployStatus


def deploy(argv, timeout=5.0):
    return DeployRecord(
        id=1,
        event_id=1,
        rule="r",
        kind="command",
        target="t",
        target_key="k",
        action={"argv": argv, "timeout": timeout},
        status=DeployStatus.RUNNING,
        attempts=1,
        created_at=0,
        repo="org/app",
        tag="stage",
        digest=None,
    )


async def _progress(text: str) -> None:
    pass


def run(argv, timeout=5.0):
    return asyncio.run(CommandExecutor().run(deploy(argv, timeout), _progress))


def test_success_captures_output_and_env(monkeypatch):
    monkeypatch.setenv("AUTODOCK_HTTP_AUTH_PASS", "hunter2")
    code = (
        "import os; print(os.environ['AUTODOCK_REPO'], os.environ.get('AUTODOCK_HTTP_AUTH_PASS'))"
    )
    result = run([sys.executable, "-c", code])
    assert result.status is DeployStatus.SUCCEEDED
    assert result.output.strip() == "org/app None"  # autodock's own secrets are not passed on


def test_no_shell_interpretation():
    result = run([sys.executable, "-c", "import sys; print(sys.argv[1])", "$(id); `x`; a|b"])
    assert result.output.strip() == "$(id); `x`; a|b"


def test_exit_code_and_bounded_output():
    result = run([sys.executable, "-c", "import sys; print('y'*200000); sys.exit(4)"])
    assert result.status is DeployStatus.FAILED and "exit code 4" in result.error
    assert len(result.output) <= 64 * 1024 + 1


def test_timeout_kills_the_group():
    result = run(
        [sys.executable, "-c", "import time; print('start', flush=True); time.sleep(30)"], 0.5
    )
    assert result.status is DeployStatus.FAILED and "timed out" in result.error
    assert "start" in result.output


def test_missing_program():
    result = run(["/nonexistent/program"])
    assert result.status is DeployStatus.FAILED and "cannot start" in result.error
