"""The CI half of autodock: branch → tag, Dockerfile choice, build, push (``autodock ci``).

env.py        which CI runs us, and the branch / commit / pull request it builds
tags.py       the branch → tag mapping (``.autodock-ci.yml``), sanitising for Docker
settings.py   ``.autodock-ci.yml`` and the command-line overrides
build.py      Dockerfile choice, OCI labels, the engine build (low-level API)
push.py       registry credentials (env / files, never argv) and the push
templates.py  ready CI configs for ``autodock ci init``
cli.py        the ``ci`` click group
"""

from __future__ import annotations

__all__: list[str] = []
