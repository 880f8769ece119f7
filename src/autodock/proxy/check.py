"""Validate rendered text with the real nginx binary (``nginx -t``) in a scratch prefix."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["NginxNotFound", "nginx_test"]


class NginxNotFound(RuntimeError):
    pass


def nginx_test(text: str, nginx: str | None = None) -> tuple[bool, str]:
    """``(ok, nginx's output)``. ``-e stderr`` keeps nginx off the host's log files."""
    binary = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise NginxNotFound("nginx not found (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="autodock-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(text)
        proc = subprocess.run(
            [binary, "-t", "-e", "stderr", "-p", tmp, "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()
