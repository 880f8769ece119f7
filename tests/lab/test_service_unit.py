"""Pure parts of `service add` and the lab layout."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from autodock.lab.service_add import (
    ServiceRequest,
    placement_constraints,
    service,
    service_labels,
)
from autodock.lab.topology import LabLayout
from autodock.proxy.sync import update_order_problems


@pytest.mark.parametrize(
    ("req", "labels"),
    [
        (
            ServiceRequest("a", "org/app:stage"),
            {"autodock.repo": "org/app", "autodock.tag": "stage"},
        ),
        (
            ServiceRequest("a", "10.231.0.1:5000/lab/whoami:1", hosts=["a.local"]),
            {
                "autodock.repo": "lab/whoami",
                "autodock.tag": "1",
                "autodock.proxy.host": "a.local",
                "autodock.proxy.port": "80",
            },
        ),
        (
            ServiceRequest("a", "org/app:v2", path="/api/", port=8080, strip=True),
            {
                "autodock.repo": "org/app",
                "autodock.tag": "v2",
                "autodock.proxy.path": "/api/",
                "autodock.proxy.port": "8080",
                "autodock.proxy.strip": "true",
            },
        ),
    ],
)
def test_service_labels(req, labels):
    assert service_labels(req) == labels


@pytest.mark.parametrize("image", ["org/app", "Not An Image:1"])
def test_service_labels_rejects_untagged_or_invalid(image):
    with pytest.raises(click.BadParameter):
        service_labels(ServiceRequest("a", image))


@pytest.mark.parametrize(
    ("node", "constraints"),
    [
        (None, []),
        ("manager", ["node.role==manager"]),
        ("worker", ["node.role==worker"]),
        ("adl-w1", ["node.hostname==adl-w1"]),
    ],
)
def test_placement(node, constraints):
    assert placement_constraints(node) == constraints


def test_service_add_help_lists_options():
    result = CliRunner().invoke(service, ["add", "--help"])
    assert result.exit_code == 0
    for opt in ("--image", "--node", "--host", "--port", "--network", "--secret", "--config"):
        assert opt in result.output


def test_layout_addresses():
    lay = LabLayout(workers=2)
    assert [n.name for n in lay.nodes] == ["adl-mgr", "adl-w1", "adl-w2"]
    assert [n.ip for n in lay.nodes] == ["10.231.0.1", "10.231.0.2", "10.231.0.3"]
    assert lay.registry == "10.231.0.1:5000"
    assert lay.node("w2").role == "worker"


def test_start_first_with_host_ports_is_flagged():
    spec = {
        "Name": "p",
        "UpdateConfig": {"Order": "start-first"},
        "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishMode": "host"}]},
    }
    assert update_order_problems(spec)
    spec["UpdateConfig"]["Order"] = "stop-first"
    assert not update_order_problems(spec)
