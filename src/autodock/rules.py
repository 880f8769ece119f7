"""Matching pushes to rules, and filling ``${...}`` placeholders. Pure functions."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .config import PLACEHOLDER_RE, Rule
from .models import PushEvent

__all__ = ["matches", "render", "repo_matches", "tag_matches"]


def repo_matches(patterns: list[str], event: PushEvent) -> bool:
    """A pattern matches the repo path (``org/app``) or the full name (``host:5000/org/app``)."""
    names = {event.repo, event.image_name}
    if event.registry is None and "/" not in event.repo:
        names.add(f"library/{event.repo}")
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)


def tag_matches(patterns: list[str], tag: str) -> bool:
    return any(fnmatchcase(tag, pattern) for pattern in patterns)


def matches(rule: Rule, event: PushEvent) -> bool:
    return repo_matches(rule.repos, event) and tag_matches(rule.tags, event.tag)


def render(template: str, values: dict[str, str]) -> str:
    """Replace each ``${name}`` with its value; names were checked when the config loaded."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)
