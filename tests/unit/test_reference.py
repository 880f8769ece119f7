import pytest

from autodock.reference import (
    InvalidReference,
    is_valid_repo,
    is_valid_tag,
    parse_image,
    short_digest,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "repo,ok",
    [
        ("org/app", True),
        ("nginx", True),
        ("a/b/c", True),
        ("org/my_app", True),
        ("org/my__app", True),
        ("org/my--app", True),
        ("127.0.0.1:5000/org/app", True),
        ("registry.local:5000/org/app", True),
        ("localhost/app", True),
        ("Org/app", False),
        ("org/app;rm", False),
        ("org/app name", False),
        ("org//app", False),
        ("org/-app", False),
        ("org/app_", False),
        ("../etc", False),
        ("org/app/", False),
        ("", False),
        ("a" * 256, False),
        ("org/$(id)", False),
    ],
)
def test_repo_grammar(repo, ok):
    assert is_valid_repo(repo) is ok


@pytest.mark.parametrize(
    "tag,ok",
    [
        ("stage", True),
        ("v1.2.3", True),
        ("dev-1a2b3c4", True),
        ("_x", True),
        ("A-Z_0.9", True),
        ("-x", False),
        (".x", False),
        ("a..b", False),
        ("a/b", False),
        ("a;b", False),
        ("a b", False),
        ("x" * 129, False),
        ("", False),
        ("stäge", False),
    ],
)
def test_tag_grammar(tag, ok):
    assert is_valid_tag(tag) is ok


@pytest.mark.parametrize(
    "ref,domain,path,tag,digest",
    [
        ("nginx", None, "nginx", None, None),
        ("org/app:stage", None, "org/app", "stage", None),
        ("127.0.0.1:5000/org/app:stage", "127.0.0.1:5000", "org/app", "stage", None),
        (f"reg.local:5000/org/app:v1@{DIGEST}", "reg.local:5000", "org/app", "v1", DIGEST),
        (f"org/app@{DIGEST}", None, "org/app", None, DIGEST),
        ("localhost:5000/app", "localhost:5000", "app", None, None),
    ],
)
def test_parse_image(ref, domain, path, tag, digest):
    parsed = parse_image(ref)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (domain, path, tag, digest)
    assert str(parsed) == ref


@pytest.mark.parametrize(
    "ref", ["", "org/app:", "org/app:a..b", "org/app@sha256:xyz", "ORG/app", "org/app:t;x"]
)
def test_parse_image_rejects(ref):
    with pytest.raises(InvalidReference):
        parse_image(ref)


def test_hub_path_and_short_digest():
    assert parse_image("nginx:1").hub_path == "library/nginx"
    assert parse_image("reg:5000/nginx").hub_path == "nginx"
    assert short_digest(DIGEST) == "a" * 12
    assert short_digest(None) == "-"
