"""Tag policies: which tag changes may roll out on their own. Pure functions.

``semver: minor`` on a service action means: a push may move the service from
``v1.4.2`` to ``v1.4.3`` or ``v1.5.0`` by itself, but ``v2.0.0`` is held, and nothing
ever moves it to a lower version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SEMVER_LEVELS", "Hold", "Version", "check_semver", "parse_version", "semver_hold"]

SEMVER_LEVELS = ("patch", "minor", "major")
_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?$"
)


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    # A release sorts after its pre-releases: (1, "") > (0, "rc.1").
    release: tuple[int, str] = (1, "")

    def __str__(self) -> str:
        pre = "" if self.release[0] else f"-{self.release[1]}"
        return f"{self.major}.{self.minor}.{self.patch}{pre}"


def parse_version(tag: str) -> Version | None:
    m = _SEMVER.match(tag)
    if not m:
        return None
    pre = m.group("pre")
    return Version(
        int(m.group("major")),
        int(m.group("minor")),
        int(m.group("patch")),
        (0, pre) if pre else (1, ""),
    )


@dataclass(frozen=True)
class Hold:
    reason: str
    approvable: bool  # a bigger upgrade than allowed waits for a person; a downgrade never


def semver_hold(current_tag: str | None, new_tag: str, allowed: str) -> Hold | None:
    """None when the change may roll out by itself; otherwise why it may not."""
    new = parse_version(new_tag)
    if new is None:
        return Hold(f"tag {new_tag!r} is not a semantic version (policy semver: {allowed})", False)
    current = parse_version(current_tag) if current_tag else None
    if current is None:
        return None  # nothing to compare with: the first versioned deploy may go
    if new < current:
        return Hold(f"{new_tag} would downgrade {current_tag}; never downgrade", False)
    if new.major != current.major and allowed != "major":
        why = f"{new_tag} is a major upgrade from {current_tag} (policy allows {allowed})"
        return Hold(why, True)
    if new.minor != current.minor and allowed == "patch":
        return Hold(f"{new_tag} is a minor upgrade from {current_tag} (policy allows patch)", True)
    return None


def check_semver(current_tag: str | None, new_tag: str, allowed: str) -> str | None:
    """None when the change may roll out by itself; otherwise the reason it is held."""
    hold = semver_hold(current_tag, new_tag, allowed)
    return hold.reason if hold else None
