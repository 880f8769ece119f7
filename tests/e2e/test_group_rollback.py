"""Services that deploy together roll back together: stage never runs half a release."""

from __future__ import annotations

import pytest

from tests.support.lab import service_image, wait_for

pytestmark = pytest.mark.e2e

FAILS_WHERE_TOLD = [
    "/bin/sh",
    "-c",
    'if [ "$FAIL" = 1 ]; then exit 3; fi; exec httpd -f -p 8000 -h /www',
]


def test_one_failing_service_rolls_back_its_group(
    docker_client, registry, images, autodock, make_service, unique
):
    repo = f"e2e/group-{unique}"
    api, web = f"api_{unique}", f"web_{unique}"
    old = images.publish(repo, "stage")
    old_ref = f"{registry.addr}/{repo}:stage@{old}"
    make_service(api, old_ref)
    make_service(web, old_ref, env=["FAIL=1"])  # the new release breaks only here
    server = autodock(
        {
            "workers": 2,
            "discovery": {"labels": False},
            "rules": [
                {
                    "name": "release",
                    "repo": repo,
                    "tag": "stage",
                    "group": "release",
                    "services": [api, web],
                    "actions": [],
                }
            ],
        }
    )

    new = images.publish(repo, "stage", cmd=FAILS_WHERE_TOLD)
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": new}
    assert server.post("/hooks/generic", body).status_code == 202

    def settled():
        deploys = server.deploys()
        rollback = [d for d in deploys if d["rule"] == "group:release"]
        done = all(d["status"] not in ("queued", "running") for d in deploys)
        return deploys if rollback and done else None

    deploys = wait_for(settled, timeout=150, interval=0.5, what="group rollback")
    by_target = {}
    for d in sorted(deploys, key=lambda d: d["id"]):
        by_target.setdefault(d["target"], []).append(d)
    assert by_target[web][-1]["status"] == "failed"
    # Two workers start both at once: api goes out, then comes back when web fails.
    assert [d["status"] for d in by_target[api]] == ["succeeded", "succeeded"]
    assert by_target[api][1]["rule"] == "group:release"
    assert by_target[api][1]["new_image"] == old_ref
    wait_for(lambda: service_image(docker_client, api) == old_ref, what="api on the old release")
