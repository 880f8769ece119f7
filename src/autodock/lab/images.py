"""Test images built from this machine's own binaries: nothing is pulled.

``lab/whoami``  busybox httpd answering every request with ``service=… node=… host=…``
                (the service and node names come from swarm templates in the env).
``lab/nginx``   the host's nginx binary plus the libraries it links, on busybox; the
                proxy's config arrives as a swarm config at /etc/nginx/nginx.conf.

Each image is one layer imported from a tar built here, so a build is a few MB of I/O.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

from .netns import LabError

__all__ = ["NGINX_IMAGE", "WHOAMI_IMAGE", "nginx_rootfs", "whoami_rootfs"]

WHOAMI_IMAGE = "lab/whoami:1"
NGINX_IMAGE = "lab/nginx:1"

WHOAMI_SCRIPT = """#!/bin/sh
# Answer every request (any path, 404 pages included) with who answered.
set -e
mkdir -p /www
printf 'service=%s node=%s host=%s\\n' \\
  "${SERVICE_NAME:-unknown}" "${NODE_NAME:-unknown}" "$(hostname)" >/www/index.html
printf 'E404:/www/index.html\\n' >/etc/httpd.conf
exec httpd -f -p "${PORT:-80}" -h /www -c /etc/httpd.conf
"""

# Served until the first config arrives: the proxy is up, but routes nothing yet.
NGINX_DEFAULT_CONF = """worker_processes 1;
error_log stderr warn;
events { worker_connections 256; }
http {
    server {
        listen 80 default_server;
        location = /__autodock/health { return 200 "ok\\n"; }
        location / { return 503 "autodock proxy: no routes yet\\n"; }
    }
}
"""

# nginx workers drop to nobody:nogroup (its compiled-in default).
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"  # noqa: S105
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).exists():
            return Path(candidate)
    raise LabError("busybox not found: apt-get install busybox-static")


class _RootFS:
    """An in-memory tar of a root filesystem."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w")  # noqa: SIM115 - closed in bytes()
        self._dirs: set[str] = set()

    def dir(self, path: str, mode: int = 0o755) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self._dirs:
                info = tarfile.TarInfo(sub)
                info.type, info.mode = tarfile.DIRTYPE, mode
                self.tar.addfile(info)
                self._dirs.add(sub)

    def text(self, path: str, content: str, mode: int = 0o644) -> None:
        self.dir(str(Path(path).parent))
        data = content.encode()
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))

    def copy(self, src: Path, dest: str | None = None, mode: int = 0o755) -> None:
        dest = dest or str(src)
        self.dir(str(Path(dest).parent))
        data = src.resolve().read_bytes()
        info = tarfile.TarInfo(dest.lstrip("/"))
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, path: str, target: str) -> None:
        self.dir(str(Path(path).parent))
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.tar.addfile(info)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def _base(root: _RootFS) -> None:
    busybox = _busybox()
    root.copy(busybox, "/bin/busybox")
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            root.symlink(f"/bin/{applet}", "busybox")
    root.dir("/tmp", 0o1777)  # noqa: S108 - a directory inside the image
    root.text("/etc/passwd", PASSWD)
    root.text("/etc/group", GROUP)


def whoami_rootfs() -> bytes:
    root = _RootFS()
    _base(root)
    root.text("/usr/local/bin/whoami-httpd", WHOAMI_SCRIPT, mode=0o755)
    return root.bytes()


def _linked_libraries(binary: Path) -> Iterable[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/"):
                yield Path(word)


def nginx_rootfs() -> bytes:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise LabError("nginx not found: apt-get install nginx-light")
    root = _RootFS()
    _base(root)
    root.copy(Path(nginx), "/usr/sbin/nginx")
    for lib in _linked_libraries(Path(nginx)):
        root.copy(lib, str(lib))
    for path in ("/var/log/nginx", "/var/lib/nginx", "/run", "/var/lock", "/usr/share/nginx"):
        root.dir(path)
    root.text("/etc/nginx/nginx.conf", NGINX_DEFAULT_CONF)
    return root.bytes()
