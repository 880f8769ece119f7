import pytest

from autodock.policies import check_semver, parse_version


@pytest.mark.parametrize(
    "current,new,allowed,held",
    [
        ("v1.4.2", "v1.4.3", "patch", None),
        ("v1.4.2", "v1.5.0", "patch", "minor upgrade"),
        ("v1.4.2", "v1.5.0", "minor", None),
        ("v1.4.2", "v2.0.0", "minor", "major upgrade"),
        ("v1.4.2", "v2.0.0", "major", None),
        ("v1.4.2", "v1.4.1", "major", "downgrade"),
        ("1.4.2", "v1.4.2-rc.1", "major", "downgrade"),
        ("v1.4.2-rc.1", "v1.4.2", "patch", None),
        ("stage", "v1.0.0", "patch", None),
        (None, "v3.0.0", "patch", None),
        ("v1.0.0", "latest", "major", "not a semantic version"),
    ],
)
def test_semver_policy(current, new, allowed, held):
    reason = check_semver(current, new, allowed)
    if held is None:
        assert reason is None
    else:
        assert reason is not None and held in reason


def test_versions_order():
    assert parse_version("v1.2.3") < parse_version("v1.10.0")
    assert parse_version("1.0.0-alpha") < parse_version("1.0.0")
    assert parse_version("01.0.0") is None
