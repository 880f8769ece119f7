"""Table-driven tests of the label → nginx.conf renderer, and `nginx -t` on its output."""

from __future__ import annotations

import importlib
import shutil

import pytest

from autodock.proxy.check import nginx_test
from autodock.proxy.render import (
    ProxyRoute,
    RenderOptions,
    config_hash,
    render,
    routes_from_services,
)

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")


def svc(name: str, **labels: str) -> dict:
    return {"name": name, "labels": {f"autodock.proxy.{k}": v for k, v in labels.items()}}


ROUTE_CASES = [
    pytest.param([svc("web", host="web.local")], [ProxyRoute("web.local", "/", "web", 80)], [],
                 id="host-only"),
    pytest.param([svc("api", path="/api", port="8080")], [ProxyRoute("", "/api/", "api", 8080)],
                 [], id="path-gets-trailing-slash"),
    pytest.param([svc("api", path="/api/", strip="yes")],
                 [ProxyRoute("", "/api/", "api", 80, strip=True)], [], id="strip"),
    pytest.param([svc("root", path="/", strip="true")], [ProxyRoute("", "/", "root", 80)], [],
                 id="strip-root-is-noop"),
    pytest.param([svc("multi", host="A.example, b.example")],
                 [ProxyRoute("a.example", "/", "multi", 80),
                  ProxyRoute("b.example", "/", "multi", 80)],
                 [], id="several-hosts-lowercased"),
    pytest.param([svc("w", host="*.stage.local")], [ProxyRoute("*.stage.local", "/", "w", 80)], [],
                 id="wildcard-host"),
    pytest.param([{"name": "plain", "labels": {"autodock.repo": "x/y"}}], [], [],
                 id="unlabelled-ignored"),
    pytest.param([{"name": "nginx", "labels": {"autodock.proxy.role": "proxy",
                                               "autodock.proxy.port": "80"}}], [], [],
                 id="proxy-itself-ignored"),
    pytest.param([svc("b", host="x.local"), svc("a", host="x.local")],
                 [ProxyRoute("x.local", "/", "a", 80)],
                 ["b: x.local/ is already routed to a; not routed"], id="conflict-first-name-wins"),
    pytest.param([svc("bad", host="x.local;evil")], [],
                 ["bad: invalid host 'x.local;evil'; not routed"], id="host-injection"),
    pytest.param([svc("bad", path="/a { return 200; }")], [], None, id="path-injection"),
    pytest.param([svc("bad", path="/a/../b")], [], None, id="path-dotdot"),
    pytest.param([svc("bad", path="api")], [], None, id="path-relative"),
    pytest.param([svc("bad", port="http")], [], ["bad: invalid port 'http'; not routed"],
                 id="port-not-int"),
    pytest.param([svc("bad", port="70000")], [], ["bad: invalid port 70000; not routed"],
                 id="port-range"),
    pytest.param([svc("bad", host="x.local", strip="maybe")], [], None, id="strip-not-bool"),
    pytest.param([svc("bad name", host="x.local")], [], None, id="service-name"),
    pytest.param([svc("ok", host="ok.local"), svc("bad", port="0")],
                 [ProxyRoute("ok.local", "/", "ok", 80)], None, id="bad-does-not-block-good"),
]  # fmt: skip


@pytest.mark.parametrize(("services", "routes", "problems"), ROUTE_CASES)
def test_routes_from_services(services, routes, problems):
    got_routes, got_problems = routes_from_services(services)
    assert got_routes == routes
    if problems is None:
        assert len(got_problems) == 1
    else:
        assert got_problems == problems


STAGE = [
    svc("stage_companies", host="companies.stage.local"),
    svc("stage_wallets", host="wallets.stage.local"),
    svc("stage_frontend-wallets", host="stage.local,wallets-ui.stage.local"),
    svc("stage_verify", host="api.stage.local", path="/verify/", strip="true"),
    svc("stage_auth", host="api.stage.local", path="/auth", port="3000"),
    svc("stage_metrics", path="/metrics.v1/", port="9100", strip="true"),
    {"name": "stage_redis", "labels": {"autodock.repo": "jincort/backend-redis"}},
]

RENDER_CASES = [
    pytest.param([], ['location / { return 404 "autodock proxy: no route\\n"; }'], id="empty"),
    pytest.param(
        STAGE,
        [
            "server_name companies.stage.local;",
            "set $upstream_1 http://stage_metrics:9100;",  # default server first
            r"rewrite ^/metrics\.v1/(.*)$ /$1 break;",
            "location = /auth { return 301 /auth/; }",
            "http://stage_auth:3000;",
            "rewrite ^/verify/(.*)$ /$1 break;",
            "server_name stage.local;",
            "server_name wallets-ui.stage.local;",
            "add_header X-Autodock-Service stage_wallets always;",
        ],
        id="stage",
    ),
    pytest.param([svc("x", host="x.local")], ["listen 8080;", "resolver 10.0.0.2 valid=5s"],
                 id="options"),
]  # fmt: skip


@pytest.mark.parametrize(("services", "expected"), RENDER_CASES)
def test_render_contains(services, expected):
    opts = (
        RenderOptions(listen=8080, resolver="10.0.0.2") if services and len(services) == 1 else None
    )
    text = render(services, opts)
    for fragment in expected:
        assert fragment in text
    assert "stage_redis" not in text


def test_render_is_deterministic_and_order_independent():
    a = render(STAGE)
    b = render(list(reversed(STAGE)))
    assert a == b
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 12
    assert config_hash(render(STAGE[:-2])) != config_hash(a)


def test_skipped_services_are_listed_in_the_config_comment():
    text = render([svc("bad", host="a b")])
    assert "# skipped: bad: invalid host 'a b'; not routed" in text


@needs_nginx
@pytest.mark.parametrize(
    "services",
    [[], STAGE, [svc("a", path="/x/", strip="true")], [svc("w", host="*.stage.local", port="1")]],
    ids=["empty", "stage", "default-server-path", "wildcard"],
)
def test_nginx_accepts_rendered_config(services):
    ok, out = nginx_test(render(services))
    assert ok, out


@needs_nginx
def test_nginx_test_rejects_broken_config():
    ok, out = nginx_test("events {}\nhttp { server { listen 80; location / { bogus; } } }\n")
    assert not ok
    assert "bogus" in out


def test_public_names():
    render_mod = importlib.import_module("autodock.proxy.render")
    assert set(render_mod.__all__) >= {"render", "routes_from_services", "config_hash"}


@needs_nginx
def test_render_cli_from_a_services_file(tmp_path):
    from click.testing import CliRunner

    from autodock.proxy.cli import proxy

    services = tmp_path / "services.yml"
    services.write_text(
        "- {name: web, labels: {autodock.proxy.host: web.local}}\n"
        "- {name: bad, labels: {autodock.proxy.port: nope}}\n"
    )
    out = tmp_path / "nginx.conf"
    result = CliRunner().invoke(proxy, ["render", "--services", str(services), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "server_name web.local;" in out.read_text()
    assert "bad: invalid port 'nope'" in result.output
