import pytest

from autodock.config import parse_config_text
from autodock.models import PushEvent
from autodock.planner import LabelledService, plan

CONFIG = parse_config_text(
    """
rules:
  - name: stage
    repo: "jincort/*"
    tag: stage
    actions:
      - service: "stage_${repository.name}"
  - name: auth-too
    repo: jincort/backend-auth
    tag: [stage, "v*"]
    services: [stage_backend-auth, auth_mirror]
  - name: legacy
    repo: "127.0.0.1:5000/tools/*"
    command: [deploy.sh, "${repository.repo_name}", "${push_data.tag}", "${push_data.pusher}"]
"""
)


def push(repo, tag, registry=None, pusher="ci"):
    return PushEvent(source="test", repo=repo, tag=tag, registry=registry, pusher=pusher)


@pytest.mark.parametrize(
    "event,targets",
    [
        (push("jincort/backend-auth", "stage"), ["stage_backend-auth", "auth_mirror"]),
        (push("jincort/frontend", "stage"), ["stage_frontend"]),
        (push("jincort/frontend", "production"), []),
        (push("jincort/backend-auth", "v1.2"), ["stage_backend-auth", "auth_mirror"]),
        (push("other/app", "stage"), []),
        (push("tools/x", "any", registry="127.0.0.1:5000"), ["legacy: deploy.sh"]),
        (push("tools/x", "any"), []),  # the rule names the registry host
    ],
)
def test_targets(event, targets):
    assert [p.target for p in plan(event, CONFIG)] == targets


def test_one_target_is_deployed_once_per_event():
    planned = plan(push("jincort/backend-auth", "stage"), CONFIG)
    keys = [p.target_key for p in planned]
    assert len(keys) == len(set(keys))
    assert planned[0].rule == "stage"  # the first rule that names a target wins


def test_command_argv_filled_and_keyed_per_repo_tag():
    (a,) = plan(push("tools/x", "stage", registry="127.0.0.1:5000"), CONFIG)
    (b,) = plan(push("tools/x", "dev-1", registry="127.0.0.1:5000"), CONFIG)
    assert a.action["argv"] == ["deploy.sh", "tools/x", "stage", "ci"]
    assert a.target_key != b.target_key


def test_labelled_services_follow_their_tag():
    labelled = [
        LabelledService("web", "org/web", "stage"),
        LabelledService("web_any", "127.0.0.1:5000/org/web", "*"),
        LabelledService("other", "org/other", "stage"),
    ]
    cfg = parse_config_text("rules: []")
    got = [p.target for p in plan(push("org/web", "stage", "127.0.0.1:5000"), cfg, labelled)]
    assert got == ["web", "web_any"]
    got = [p.target for p in plan(push("org/web", "dev-1", "127.0.0.1:5000"), cfg, labelled)]
    assert got == ["web_any"]
    off = parse_config_text("discovery: {labels: false}")
    assert plan(push("org/web", "stage"), off, labelled) == []


def test_invalid_rendered_service_name_is_skipped():
    cfg = parse_config_text("rules: [{repo: '*', services: ['${push_data.pusher}']}]")
    assert plan(push("a/b", "t", pusher=""), cfg) == []
    assert [p.target for p in plan(push("a/b", "t", pusher="bob"), cfg)] == ["bob"]


def test_group_is_carried_to_service_deploys_only():
    cfg = parse_config_text("rules: [{repo: 'a/*', group: rel, services: [x, y], command: [echo]}]")
    planned = plan(push("a/b", "t"), cfg)
    assert [p.action.get("group") for p in planned] == ["rel", "rel", None]
