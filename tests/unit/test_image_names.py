"""Image references with registry host and port survive every step (a known bug class)."""

import pytest

from autodock.executors.swarm import choose_image_name
from autodock.models import DeployRecord, DeployStatus

D = "sha256:" + "c" * 64


def deploy(repo, registry=None, image=None):
    return DeployRecord(
        id=1,
        event_id=1,
        rule="r",
        kind="service",
        target="s",
        target_key="k",
        action={"service": "s", "image": image},
        status=DeployStatus.RUNNING,
        attempts=1,
        created_at=0,
        repo=repo,
        tag="stage",
        registry=registry,
    )


@pytest.mark.parametrize(
    "current,repo,registry,override,expected",
    [
        # the service keeps the host its nodes pull from, even if the push came elsewhere
        (
            f"10.231.0.1:5000/org/app:stage@{D}",
            "org/app",
            "127.0.0.1:5000",
            None,
            "10.231.0.1:5000/org/app",
        ),
        (
            f"registry.local:5000/org/app:v1@{D}",
            "org/app",
            None,
            None,
            "registry.local:5000/org/app",
        ),
        (f"nginx:1@{D}", "library/nginx", None, None, "nginx"),
        ("org/app:stage", "org/app", None, None, "org/app"),
        # another repository: the pushed image's own full name
        (
            f"registry.local:5000/org/other:v1@{D}",
            "org/app",
            "registry.local:5000",
            None,
            "registry.local:5000/org/app",
        ),
        (None, "org/app", "[::1]:5000", None, "[::1]:5000/org/app"),
        # an explicit image name in the rule wins
        (
            "org/app:stage",
            "org/app",
            None,
            "mirror.local:5000/org/app",
            "mirror.local:5000/org/app",
        ),
    ],
)
def test_choose_image_name(current, repo, registry, override, expected):
    assert choose_image_name(current, deploy(repo, registry, override)) == expected


def test_labelled_services_group_by_stack():
    from autodock.executors.swarm import list_labelled_services

    def svc(name, **labels):
        image = f"reg:5000/org/{name}:stage@{D}"
        return {
            "Spec": {
                "Name": name,
                "Labels": {"autodock.repo": f"org/{name}", **labels},
                "TaskTemplate": {"ContainerSpec": {"Image": image}},
            }
        }

    class Api:
        def services(self, filters):
            return [
                svc(
                    "stage_api",
                    **{"autodock.group": "stack", "com.docker.stack.namespace": "stage"},
                ),
                svc("solo", **{"autodock.group": "release"}),
                svc("plain"),
            ]

    class Conn:
        class client:  # noqa: N801 - mimics DockerConnection.client
            api = Api()

    found = {s.name: (s.tag, s.group) for s in list_labelled_services(Conn())}
    assert found == {
        "stage_api": ("stage", "stage"),
        "solo": ("stage", "release"),
        "plain": ("stage", None),
    }
