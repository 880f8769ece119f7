"""Network namespaces, veths and a bridge, driven through ``ip`` with argv lists.

Processes are started *inside* a namespace with ``setns(2)`` in the child, and get a
UTS namespace of their own so each node reports its own hostname to the swarm (on one
machine every engine would otherwise call itself the same, and placement by hostname
would be meaningless).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..exceptions import AutodockError

__all__ = [
    "LabError",
    "alive",
    "ip",
    "link_exists",
    "netns_exists",
    "route_exists",
    "spawn_in_netns",
    "stop_pid",
]

CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000


class LabError(AutodockError):
    """The lab cannot be brought up or down; the message says which step failed."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def netns_exists(name: str) -> bool:
    return Path(f"/var/run/netns/{name}").exists()


def link_exists(name: str, netns: str | None = None) -> bool:
    return bool(ip("-o", "link", "show", "dev", name, netns=netns, check=False).strip())


def route_exists(prefix: str) -> bool:
    return bool(ip("-o", "route", "show", prefix, check=False).strip())


def _enter(netns_path: str, hostname: str | None) -> Callable[[], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def preexec() -> None:
        fd = os.open(netns_path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns_path}")
        finally:
            os.close(fd)
        if hostname:
            if libc.unshare(CLONE_NEWUTS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS)")
            name = hostname.encode()
            if libc.sethostname(name, len(name)) != 0:
                raise OSError(ctypes.get_errno(), "sethostname")

    return preexec


def spawn_in_netns(
    argv: list[str], netns_path: str, log: IO[bytes], hostname: str | None = None
) -> subprocess.Popen[bytes]:
    """Start a daemon in ``netns_path``, detached from our session so it outlives us."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        # preexec_fn is unsafe only with threads holding locks; daemons start before any.
        preexec_fn=_enter(netns_path, hostname),
        start_new_session=True,
    )


def alive(pid: int, marker: str) -> bool:
    """``pid`` runs and is ours: its command line mentions ``marker`` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def stop_pid(pid: int, marker: str, timeout: float = 30.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; only if the process is still ours."""
    if not alive(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True
