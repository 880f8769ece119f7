"""Branch → image tag. Pure: a ``BuildContext`` and ``TagRules`` in, a valid Docker tag out.

The defaults are the old CI snippet's: ``master`` → ``production``, ``develop`` →
``stage``, any other branch → ``dev-<short sha>``. Tag templates may use the
placeholders in ``PLACEHOLDERS``; every value is sanitised and the result is checked
against Docker's tag grammar, so whatever a branch is called the tag is usable.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..exceptions import ConfigError
from ..reference import InvalidReference, validate_tag
from .env import BuildContext

__all__ = [
    "DEFAULT_BRANCHES",
    "PLACEHOLDERS",
    "TagRules",
    "check_template",
    "compute_tag",
    "describe",
    "render",
    "sanitize",
    "template_for",
]

DEFAULT_BRANCHES: tuple[tuple[str, str], ...] = (("master", "production"), ("develop", "stage"))
PLACEHOLDERS = frozenset({"branch", "sha", "short_sha", "pr", "git_tag"})
MAX_TAG = 128
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class TagRules:
    """How a build context becomes a tag. ``branches`` are (glob, template), first match wins."""

    branches: tuple[tuple[str, str], ...] = DEFAULT_BRANCHES
    other: str = "dev-{short_sha}"
    # pull requests never get a branch's (deploying) tag: that is the target's, not theirs
    pull_request: str = "pr-{pr}"
    # None: a git-tag build is tagged like an unmapped branch (``other``)
    git_tag: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)


def sanitize(value: str) -> str:
    """Make ``value`` fit Docker's tag grammar: ``feature/Ünïcode x`` → ``feature-Unicode-x``."""
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    out = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_value)
    out = re.sub(r"\.{2,}", ".", out)
    out = re.sub(r"-{2,}", "-", out)
    out = out.lstrip(".-")
    return out[:MAX_TAG].rstrip(".-")


def check_template(template: str) -> str:
    """Raise ConfigError if ``template`` names an unknown placeholder."""
    for name in _PLACEHOLDER_RE.findall(template):
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{n}}}" for n in sorted(PLACEHOLDERS))
            raise ConfigError(f"tag template {template!r}: unknown placeholder {{{name}}}; {known}")
    if "{" in _PLACEHOLDER_RE.sub("", template) or "}" in _PLACEHOLDER_RE.sub("", template):
        raise ConfigError(f"tag template {template!r}: unbalanced braces")
    return template


def _values(ctx: BuildContext) -> dict[str, str | None]:
    return {
        "branch": sanitize(ctx.branch) if ctx.branch else None,
        "sha": ctx.sha,
        "short_sha": ctx.short_sha,
        "pr": ctx.pull_request if ctx.pull_request != "unknown" else None,
        "git_tag": sanitize(ctx.git_tag) if ctx.git_tag else None,
    }


def render(template: str, ctx: BuildContext) -> str:
    """Fill in ``template`` and return a valid Docker tag (ConfigError if impossible)."""
    check_template(template)
    values = _values(ctx)

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if value == "":
            raise ConfigError(
                f"tag template {template!r}: {{{match.group(1)}}} of this build "
                f"({describe(ctx)}) has no characters a Docker tag allows; pass --branch or --tag"
            )
        if value is None:
            raise ConfigError(
                f"tag template {template!r} needs {{{match.group(1)}}}, which this build "
                f"({describe(ctx)}) does not have; pass --branch/--sha or change the mapping"
            )
        return value

    tag = sanitize(_PLACEHOLDER_RE.sub(fill, template))
    try:
        return validate_tag(tag)
    except InvalidReference as exc:
        raise ConfigError(f"tag template {template!r} gives no valid tag: {exc}") from None


def compute_tag(ctx: BuildContext, rules: TagRules) -> str:
    """The tag this build pushes."""
    return render(template_for(ctx, rules)[0], ctx)


def template_for(ctx: BuildContext, rules: TagRules) -> tuple[str, str]:
    """The template that applies to ``ctx``, and why (for people reading CI logs)."""
    if ctx.is_pull_request:
        if ctx.pull_request == "unknown":
            return rules.other, "pull request without a number"
        return rules.pull_request, f"pull request {ctx.pull_request}"
    if ctx.branch is not None:
        for pattern, template in rules.branches:
            if fnmatchcase(ctx.branch, pattern):
                return template, f"branch {ctx.branch} matches {pattern!r}"
        return rules.other, f"branch {ctx.branch} is not mapped"
    if ctx.git_tag is not None and rules.git_tag is not None:
        return rules.git_tag, f"git tag {ctx.git_tag}"
    return rules.other, "detached HEAD" if ctx.git_tag is None else f"git tag {ctx.git_tag}"


def describe(ctx: BuildContext) -> str:
    parts = [ctx.provider]
    if ctx.pull_request:
        parts.append(f"pull request {ctx.pull_request}")
    parts.append(f"branch {ctx.branch}" if ctx.branch else "no branch")
    if ctx.git_tag:
        parts.append(f"git tag {ctx.git_tag}")
    parts.append(f"commit {ctx.short_sha}" if ctx.sha else "no commit")
    return ", ".join(parts)
