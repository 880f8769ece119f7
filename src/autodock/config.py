"""Configuration: ``autodock.yml`` (YAML) or a legacy ``config.json``, validated with line numbers.

A legacy file is the old webhook tool's map ``{"org/repo": [argv...]}``; it loads
unchanged and becomes one command rule per repository, for any tag.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from .cron import Cron
from .exceptions import ConfigError
from .intake.policy import EndpointAuth, WebhookSecurity
from .reference import is_valid_repo

__all__ = [
    "DEFAULT_PORT",
    "ApiConfig",
    "BasicAuth",
    "CommandAction",
    "Config",
    "NotifierConfig",
    "OutboxSettings",
    "Rule",
    "ServiceAction",
    "load_config",
    "parse_config_text",
    "PLACEHOLDER_NAMES",
]

DEFAULT_PORT = 58732
PLACEHOLDER_NAMES = frozenset(
    {
        "repository.repo_name",
        "repository.name",
        "repository.namespace",
        "repository.owner",
        "push_data.tag",
        "push_data.pusher",
        "push_data.pushed_at",
        "image",
        "digest",
        "registry",
    }
)
PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_placeholders(values: Iterable[str]) -> None:
    for value in values:
        for name in PLACEHOLDER_RE.findall(value):
            if name not in PLACEHOLDER_NAMES:
                known = ", ".join(f"${{{n}}}" for n in sorted(PLACEHOLDER_NAMES))
                raise ValueError(f"unknown placeholder ${{{name}}}; known: {known}")


def _resolve_secret(model: BaseModel, name: str) -> str | None:
    """``name`` given inline, or in the environment variable ``name_env``, or in the file
    ``name_file`` (a Docker secret); blank counts as not given."""
    inline = getattr(model, name)
    if inline is not None:
        return str(inline.get_secret_value()) or None
    env = getattr(model, f"{name}_env")
    if env:
        return os.environ.get(env) or None
    path = getattr(model, f"{name}_file")
    if path:
        try:
            return str(path.read_text()).strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read {name}_file {path}: {exc.strerror}") from exc
    return None


class SecretSource(_Model):
    """A secret given inline, by environment variable, or by file (Docker secrets)."""

    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None

    def resolve_password(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env:
            return os.environ.get(self.password_env)
        if self.password_file:
            try:
                return self.password_file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read password_file {self.password_file}: {exc}") from exc
        return None


class BasicAuth(SecretSource):
    username: str


class RegistryCredentials(SecretSource):
    username: str


class SmokeCheck(_Model):
    """Probe the new version after it converged; on failure roll back to the old image."""

    url: str | None = Field(None, description="full URL; default: the published port")
    path: str = "/"
    port: int | None = Field(None, description="container port whose published port to probe")
    host: str = Field("127.0.0.1", description="where published ports are reachable")
    expect_status: int = 200
    expect_body: str | None = None
    host_header: str | None = None
    timeout: float = Field(5.0, gt=0)
    retries: int = Field(5, ge=1)
    interval: float = Field(2.0, ge=0)


class ServiceAction(_Model):
    """Update a Swarm service's image (pinned by digest) and wait for convergence."""

    service: str = Field(description="service name; may use ${...} placeholders")
    image: str | None = Field(
        None, description="image name to deploy (no tag); default: the service's own image name"
    )
    timeout: float | None = Field(None, gt=0, description="seconds to wait for convergence")
    check: SmokeCheck | None = Field(None, description="post-deploy smoke check")
    semver: Literal["patch", "minor", "major"] | None = Field(
        None, description="roll out only version bumps up to this level; never downgrade"
    )

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        _check_placeholders([v])
        if "${" not in v and not SERVICE_NAME_RE.match(v):
            raise ValueError(f"invalid service name {v!r}")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is not None:
            _check_placeholders([v])
            if "${" not in v and not is_valid_repo(v):
                raise ValueError(f"invalid image name {v!r} (give it without a tag)")
        return v


class CommandAction(_Model):
    """Run an argv (never through a shell) with placeholders filled in."""

    command: list[str] = Field(min_length=1, description="argv; ${...} placeholders allowed")
    name: str | None = None
    timeout: float | None = Field(None, gt=0)
    cwd: str | None = None
    idempotent: bool = Field(False, description="safe to run again if autodock died while it ran")

    @field_validator("command")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        _check_placeholders(v)
        if not v[0]:
            raise ValueError("the command's program (argv[0]) is empty")
        return v


def _action_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "command" if "command" in value and "service" not in value else "service"
    return "command" if isinstance(value, CommandAction) else "service"


Action = Annotated[
    Annotated[ServiceAction, Tag("service")] | Annotated[CommandAction, Tag("command")],
    Discriminator(_action_kind),
]


class Rule(_Model):
    """Pushes whose repo and tag match run the rule's actions."""

    name: str | None = None
    repo: str | list[str] = Field(description="glob(s) on org/app or host:port/org/app")
    tag: str | list[str] = "*"
    actions: list[Action] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list, description="shorthand: service actions")
    command: list[str] | None = Field(None, description="shorthand: one command action")
    notify: list[str] | None = None
    group: str | None = Field(
        None,
        description="the rule's services form one release: when one fails, the others "
        "that this push updated roll back too",
    )
    approval: bool = Field(False, description="pushes wait as awaiting_approval")
    window: str | list[str] | None = Field(
        None, description="cron expression(s) of the minutes deploys may run"
    )
    timezone: str = Field("UTC", description="IANA zone the window is read in")

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | list[str] | None) -> str | list[str] | None:
        for expr in [v] if isinstance(v, str) else v or []:
            Cron.parse(expr)  # CronError is a ValueError: reported with its line
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name (Europe/Berlin)") from None
        return v

    @field_validator("services")
    @classmethod
    def _services(cls, v: list[str]) -> list[str]:
        for name in v:
            ServiceAction(service=name)  # same checks as the long form
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            CommandAction(command=v)
        return v

    @model_validator(mode="after")
    def _expand(self) -> Rule:
        if not (self.actions or self.services or self.command):
            raise ValueError("a rule needs at least one of: actions, services, command")
        return self

    @property
    def repos(self) -> list[str]:
        return [self.repo] if isinstance(self.repo, str) else list(self.repo)

    @property
    def tags(self) -> list[str]:
        return [self.tag] if isinstance(self.tag, str) else list(self.tag)

    @property
    def display_name(self) -> str:
        return self.name or ",".join(self.repos)

    def all_actions(self) -> list[ServiceAction | CommandAction]:
        out: list[ServiceAction | CommandAction] = list(self.actions)
        out += [ServiceAction(service=s) for s in self.services]
        if self.command:
            out.append(CommandAction(command=self.command))
        return out


class SlackApp(_Model):
    """A Slack app whose buttons (Approve, Reject, Revert) call /hooks/slack/actions;
    requests are verified with the app's signing secret."""

    signing_secret: SecretStr | None = None
    signing_secret_env: str | None = None
    signing_secret_file: Path | None = None

    def resolve_secret(self) -> str | None:
        return _resolve_secret(self, "signing_secret")


class ProxySettings(_Model):
    """Keep the nginx proxy's config current from service labels (autodock.proxy.*)."""

    enabled: bool = False
    service: str | None = Field(
        None, description="default: the service labelled autodock.proxy.role=proxy"
    )
    interval: float = Field(5.0, gt=0)


class Discovery(_Model):
    labels: bool = Field(True, description="deploy services labelled autodock.repo=org/app")
    refresh_seconds: float = Field(5.0, gt=0)


# Notifications (issue #3): channels by name, routed per rule (``notify:``) or by
# ``default_notify``. Secrets resolve at send time so they never reach the store.
NotifyEventName = Literal["started", "succeeded", "failed", "rolled_back", "awaiting_approval"]


class NotifierConfig(_Model):
    """One notification channel: a Slack webhook/bot, a JSON webhook, or Docker Hub callbacks."""

    type: Literal["slack", "webhook", "dockerhub"]
    enabled: bool = True
    events: list[NotifyEventName] = Field(
        default_factory=lambda: ["succeeded", "failed", "rolled_back", "awaiting_approval"],
        description="which deploy events to send; 'started' is opt-in",
    )
    url: SecretStr | None = Field(None, description="incoming-webhook / endpoint URL")
    url_env: str | None = None
    url_file: Path | None = None
    token: SecretStr | None = Field(None, description="Slack bot token (chat.postMessage)")
    token_env: str | None = None
    token_file: Path | None = None
    channel: str | None = Field(None, description="Slack channel for chat.postMessage")
    api_url: str = Field("https://slack.com/api", description="Slack Web API base URL")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for webhook signatures")
    secret_env: str | None = None
    secret_file: Path | None = None
    context: str = Field("autodock", description="Docker Hub callback 'context'")
    timeout: float | None = Field(None, gt=0, description="seconds per HTTP attempt")

    @model_validator(mode="after")
    def _complete(self) -> NotifierConfig:
        has_url = bool(self.url or self.url_env or self.url_file)
        has_token = bool(self.token or self.token_env or self.token_file)
        if self.type == "slack" and not (has_url or (has_token and self.channel)):
            raise ValueError("a slack notifier needs url (incoming webhook) or token + channel")
        if self.type == "webhook" and not has_url:
            raise ValueError("a webhook notifier needs url, url_env or url_file")
        return self

    def resolve_url(self) -> str | None:
        return _resolve_secret(self, "url")

    def resolve_token(self) -> str | None:
        return _resolve_secret(self, "token")

    def resolve_secret(self) -> str | None:
        return _resolve_secret(self, "secret")


class OutboxSettings(_Model):
    """How the notification outbox retries: exponential backoff with jitter, then dead."""

    max_age: float = Field(86400.0, gt=0, description="give up (mark dead) after this many s")
    backoff: float = Field(2.0, gt=0, description="first retry delay, doubled each try")
    max_backoff: float = Field(600.0, gt=0)
    timeout: float = Field(10.0, gt=0, description="seconds per HTTP attempt")
    concurrency: int = Field(8, ge=1, le=64)


class ApiConfig(_Model):
    """The HTTP API's bearer token: actions always need it; reads when ``read: token``."""

    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None
    read: Literal["open", "token"] = "open"

    @model_validator(mode="after")
    def _token_for_reads(self) -> ApiConfig:
        if self.read == "token" and not (self.token or self.token_env or self.token_file):
            raise ValueError("read: token needs one of token, token_env, token_file")
        return self

    def resolve_token(self) -> str | None:
        return _resolve_secret(self, "token")


class Config(_Model):
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    data_dir: Path = Path(os.environ.get("AUTODOCK_DATA_DIR", "./autodock-data"))
    db: str | None = None
    workers: int = Field(2, ge=1, le=64)
    deploy_timeout: float = Field(300.0, gt=0)
    command_timeout: float = Field(600.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    lease_seconds: float = Field(30.0, gt=0, description="a deploy's lease; renewed every 1/3")
    retry_backoff: float = Field(2.0, gt=0, description="first retry delay, doubled each try")
    dedup_window: float = Field(300.0, ge=0)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    docker_host: str | None = None
    log_format: Literal["text", "json"] = "text"
    auth: BasicAuth | EndpointAuth | Literal["none"] | None = None
    webhooks: WebhookSecurity = WebhookSecurity()
    max_queued_per_source: int = Field(1000, ge=1, description="queued deploys per source")
    body_timeout: float = Field(10.0, gt=0, description="seconds to receive a request body")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    registries: dict[str, RegistryCredentials] = Field(default_factory=dict)
    discovery: Discovery = Discovery()
    proxy: ProxySettings = ProxySettings()
    api: ApiConfig = ApiConfig()
    rules: list[Rule] = Field(default_factory=list)
    db_clone: dict[str, Any] | None = Field(
        None, description="prod→stage database clones; parsed by autodock.db.schedule"
    )
    legacy: bool = False
    notifiers: dict[str, NotifierConfig] = Field(default_factory=dict)
    default_notify: list[str] = Field(default_factory=list)
    outbox: OutboxSettings = OutboxSettings()
    public_url: str | None = Field(None, description="dashboard base URL, linked from messages")
    slack_app: SlackApp | None = Field(None, description="interactive Slack buttons")

    @model_validator(mode="after")
    def _known_notifiers(self) -> Config:
        for where, names in [("default_notify", self.default_notify)] + [
            (f"rule {r.display_name}: notify", r.notify or []) for r in self.rules
        ]:
            unknown = [n for n in names if n not in self.notifiers]
            if unknown:
                raise ValueError(f"{where} names unknown notifier(s): {', '.join(unknown)}")
        return self

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be HOST:PORT, got {v!r}")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> Config:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def db_target(self) -> str:
        return self.db or str(self.data_dir / "autodock.db")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


# ---------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str] | None, **overrides: Any) -> Config:
    """Load a YAML or legacy JSON config file (or defaults when path is None)."""
    if path is None:
        return _build({}, None, overrides)
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from exc
    return parse_config_text(text, name=str(p), **overrides)


def parse_config_text(text: str, name: str = "<config>", **overrides: Any) -> Config:
    stripped = text.lstrip()
    if stripped.startswith("{") and _looks_legacy(stripped):
        return _build(_legacy_to_dict(stripped, name), None, overrides, name)
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}: not valid YAML", [(line, problem)]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the top level must be a mapping", [(1, type(data).__name__)])
    return _build(data, root, overrides, name)


def _looks_legacy(text: str) -> bool:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return True  # report JSON errors through the legacy path, with its line numbers
    return isinstance(data, dict) and all(isinstance(v, list) for v in data.values())


def _legacy_to_dict(text: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: not valid JSON", [(exc.lineno, exc.msg)]) from exc
    problems: list[tuple[int | None, str]] = []
    rules = []
    for repo, argv in data.items():
        if not is_valid_repo(repo):
            problems.append((_json_line(text, repo), f"invalid repository name {repo!r}"))
            continue
        if not argv or not all(isinstance(a, str) for a in argv):
            problems.append((_json_line(text, repo), f"{repo}: argv must be a list of strings"))
            continue
        rules.append({"name": repo, "repo": repo, "tag": "*", "actions": [{"command": argv}]})
    if problems:
        raise ConfigError(f"{name}: invalid legacy config", problems)
    return {"rules": rules, "legacy": True}


def _json_line(text: str, key: str) -> int | None:
    idx = text.find(json.dumps(key))
    return text.count("\n", 0, idx) + 1 if idx >= 0 else None


def _build(
    data: dict[str, Any], root: yaml.Node | None, overrides: dict[str, Any], name: str = ""
) -> Config:
    merged = dict(data)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _strip_union_tags(list(err["loc"]))
            where = ".".join(str(p) for p in loc)
            problems.append((_yaml_line(root, loc), f"{where}: {err['msg']}"))
        raise ConfigError(f"{name or 'config'}: invalid configuration", problems) from None


def _strip_union_tags(loc: list[Any]) -> list[Any]:
    """Drop the union-member names pydantic puts in error locations."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        after_action = i >= 2 and loc[i - 2] == "actions" and isinstance(loc[i - 1], int)
        if (after_action and part in ("service", "command")) or part in (
            "BasicAuth",
            "EndpointAuth",
            "literal['none']",
        ):
            continue
        out.append(part)
    return out


def _yaml_line(root: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node = value
                    line = key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
