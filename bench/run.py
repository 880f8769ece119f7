"""autodock benchmarks: every case measured side by side in one run on this machine.

    python bench/run.py [--quick] [--only intake,overhead,burst,fanout,footprint,dbclone]

Writes bench/results/latest.{md,json,png}. Load goes to loopback only, bounded in
requests and time. Absolute numbers vary between machines; compare the ratios.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.lab import (  # noqa: E402  (the bench reuses the test lab helpers)
    TEST_AUTH,
    AutodockServer,
    Images,
    create_service,
    ensure_lab,
    free_port,
    running_images,
    start_registry,
    wait_for,
)

RESULTS = ROOT / "bench" / "results"
WORK = Path(tempfile.mkdtemp(prefix="autodock-bench-"))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_stable(path: Path, timeout: float, quiet: float = 3.0) -> int:
    """Lines in ``path`` once it stopped growing for ``quiet`` seconds (or at timeout)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count_lines(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return last


def run_wrk(url: str, seconds: int, connections: int, auth: str | None) -> dict[str, Any]:
    env = {**os.environ, "BENCH_AUTH": auth or ""}
    argv = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(ROOT / "bench" / "wrk_push.lua"),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    match = re.search(r"WRK_JSON (\{.*\})", out)
    assert match, out
    data = json.loads(match.group(1))
    errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    data["acknowledged"] = data["requests"] - data["status_errors"]
    data["acked_per_s"] = data["acknowledged"] / (data["duration_us"] / 1e6)
    data["socket_errors"] = errors
    data["req_per_s"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


# ---------------------------------------------------------------- 1. intake


def bench_intake(seconds: int, connections: int) -> dict[str, Any]:
    record_autodock = WORK / "autodock-ran.txt"
    record_peer = WORK / "webhook-ran.txt"
    recorder = str(ROOT / "bench" / "record.sh")
    auth = base64.b64encode(":".join(TEST_AUTH).encode()).decode()

    log(f"intake: autodock, wrk {connections} connections × {seconds}s")
    server = AutodockServer(
        free_port(),
        _workdir("intake"),
        {
            "workers": 2,
            "discovery": {"labels": False},
            "dedup_window": 0,
            # A throughput test: the default bound (1000 queued per source) would answer
            # most of the load with 429s, which are cheap but are not acknowledged work.
            "max_queued_per_source": 10_000_000,
            # The peer sends nothing back; neither does autodock here.
            "notifiers": {"hub": {"type": "dockerhub", "enabled": False}},
            "rules": [
                {
                    "name": "record",
                    "repo": "bench/*",
                    "tag": "*",
                    "command": [recorder, "${repository.repo_name}"],
                }
            ],
        },
        env={"BENCH_RECORD_FILE": str(record_autodock)},
    ).start()
    idle_rss = rss_mb(server.proc.pid)  # type: ignore[union-attr]
    ours = run_wrk(f"{server.url}/autodock/v1/", seconds, connections, auth)
    load_rss = rss_mb(server.proc.pid)  # type: ignore[union-attr]
    ours["executed"] = wait_stable(record_autodock, timeout=240, quiet=5)
    # wrk does not count answers still in flight when its clock stops; the store does.
    ours["acknowledged"] = _stored_events(server.db)
    ours["acked_per_s"] = ours["acknowledged"] / (ours["duration_us"] / 1e6)
    counts = httpx.get(f"{server.url}/healthz", timeout=5).json()
    ours["still_queued"] = counts["queued"]
    ours["rss_idle_mb"], ours["rss_load_mb"] = idle_rss, load_rss
    server.stop()  # a clean stop checkpoints the WAL into the database file
    db_bytes = sum(f.stat().st_size for f in server.db.parent.glob("autodock.db*"))
    ours["store_bytes_per_10k_events"] = db_bytes / max(ours["acknowledged"], 1) * 10_000

    log("intake: adnanh/webhook 2.8, same command, same load")
    port = free_port()
    hooks = WORK / "hooks.json"
    hooks.write_text(
        json.dumps(
            [
                {
                    "id": "autodock",
                    "execute-command": recorder,
                    "pass-arguments-to-command": [
                        {"source": "payload", "name": "repository.repo_name"}
                    ],
                }
            ]
        )
    )
    peer = subprocess.Popen(
        ["webhook", "-hooks", str(hooks), "-ip", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BENCH_RECORD_FILE": str(record_peer)},
    )
    wait_for(lambda: _port_open(port), what="webhook")
    theirs = run_wrk(f"http://127.0.0.1:{port}/hooks/autodock", seconds, connections, None)
    theirs["rss_load_mb"] = rss_mb(peer.pid)
    theirs["executed"] = wait_stable(record_peer, timeout=120, quiet=5)
    peer.terminate()
    peer.wait(10)
    for side in (ours, theirs):
        # wrk misses answers in flight when its clock stops, so a peer can run a few more
        # than wrk counted; only the shortfall is lost work.
        side["lost"] = max(0, side["acknowledged"] - side["executed"])
    return {
        "autodock": ours,
        "webhook": theirs,
        "ratio_req_per_s": ours["acked_per_s"] / theirs["acked_per_s"],
    }


def _stored_events(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def _port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


def _workdir(name: str) -> Path:
    path = WORK / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- 2. deploy overhead


def bench_overhead(client: docker.DockerClient, images: Images, rounds: int) -> dict[str, Any]:
    """push → converged through autodock vs. the same update done directly on the API."""
    repo, svc = "bench/overhead", "bench_overhead"
    digests = [images.publish(repo, "stage") for _ in range(2 * rounds + 1)]
    _remove_service(client, svc)
    create_service(client, svc, f"{images.registry}/{repo}:stage@{digests[0]}")
    wait_for(lambda: running_images(client, svc), timeout=60, what="overhead service")
    server = AutodockServer(
        free_port(),
        _workdir("overhead"),
        {
            "discovery": {"labels": False},
            "rules": [{"repo": repo, "tag": "*", "services": [svc]}],
        },
    ).start()
    direct, via, started = [], [], []
    for i in range(rounds):
        # Bare swarm: update the spec and poll until swarm says completed.
        ref = f"{images.registry}/{repo}:stage@{digests[1 + 2 * i]}"
        direct.append(_direct_update(client, svc, ref))
        # autodock: POST the push, wait until the deploy is recorded as finished.
        digest = digests[2 + 2 * i]
        t0 = time.time()
        body = {"repo": repo, "tag": "stage", "registry": images.registry, "digest": digest}
        reply = server.post("/hooks/generic", body).json()
        deploy_id = reply["deploys"][0]

        def finished(deploy_id: int = deploy_id) -> dict[str, Any] | None:
            d = httpx.get(f"{server.url}/api/v1/deploys/{deploy_id}", timeout=5).json()
            return d if d["status"] not in ("queued", "running") else None

        record = wait_for(finished, timeout=120, interval=0.02, what="deploy")
        assert record["status"] == "succeeded", record
        via.append(record["finished_at"] - t0)
        started.append(record["started_at"] - t0)
    server.stop()
    _remove_service(client, svc)
    p50_direct, p50_via = statistics.median(direct), statistics.median(via)
    return {
        "rounds": rounds,
        "direct_p50_s": p50_direct,
        "autodock_p50_s": p50_via,
        "push_to_started_p50_ms": statistics.median(started) * 1000,
        "overhead_p50_ms": (p50_via - p50_direct) * 1000,
        "direct_s": direct,
        "autodock_s": via,
    }


def _direct_update(client: docker.DockerClient, name: str, ref: str) -> float:
    t0 = time.time()
    svc = client.api.inspect_service(name)
    before = (svc.get("UpdateStatus") or {}).get("StartedAt")
    spec = dict(svc["Spec"]["TaskTemplate"]["ContainerSpec"], Image=ref)
    client.api.update_service(
        svc["ID"],
        svc["Version"]["Index"],
        task_template={"ContainerSpec": spec},
        fetch_current_spec=True,
    )
    while True:
        status = client.api.inspect_service(name).get("UpdateStatus") or {}
        if status.get("StartedAt") != before and status.get("State") == "completed":
            return time.time() - t0
        time.sleep(0.02)


def _remove_service(client: docker.DockerClient, name: str) -> None:
    try:
        client.services.get(name).remove()
        wait_for(
            lambda: not client.containers.list(
                filters={"label": f"com.docker.swarm.service.name={name}"}
            ),
            timeout=30,
            what="service gone",
        )
    except docker.errors.NotFound:
        pass


# ---------------------------------------------------------------- 3. bursts


def bench_burst(client: docker.DockerClient, images: Images, pushes: int) -> dict[str, Any]:
    repo, svc = "bench/burst", "bench_burst"
    log(f"burst: preparing {pushes} distinct images")
    digests = [images.publish(repo, f"v{i}") for i in range(pushes)]
    _remove_service(client, svc)
    create_service(client, svc, f"{images.registry}/{repo}:v0@{digests[0]}")
    wait_for(lambda: running_images(client, svc), timeout=60, what="burst service")
    server = AutodockServer(
        free_port(),
        _workdir("burst"),
        {
            "discovery": {"labels": False},
            "rules": [{"repo": repo, "tag": "*", "services": [svc]}],
        },
    ).start()
    t0 = time.monotonic()
    with httpx.Client(auth=TEST_AUTH, timeout=10) as http:
        for digest in digests[1:]:
            body = {"repo": repo, "tag": "stage", "registry": images.registry, "digest": digest}
            http.post(f"{server.url}/hooks/generic", json=body).raise_for_status()
    sent_in = time.monotonic() - t0
    deploys = server.wait_final(pushes - 1, timeout=180, target=svc)
    ran = [d for d in deploys if d["status"] != "superseded"]
    final = client.api.inspect_service(svc)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    server.stop()
    _remove_service(client, svc)
    return {
        "pushes": pushes - 1,
        "sent_in_s": sent_in,
        "deploys_run": len(ran),
        "superseded": len(deploys) - len(ran),
        "final_is_last_push": final.endswith(digests[-1]),
    }


# ---------------------------------------------------------------- 4. fan-out


def bench_fanout(client: docker.DockerClient, images: Images, count: int) -> dict[str, Any]:
    repo = "bench/fanout"
    first = images.publish(repo, "stage")
    names = [f"bench_fan_{i:02d}" for i in range(count)]
    log(f"fan-out: creating {count} services")
    for name in names:
        _remove_service(client, name)
        create_service(client, name, f"{images.registry}/{repo}:stage@{first}")
    wait_for(
        lambda: all(running_images(client, n) for n in names),
        timeout=300,
        interval=1,
        what="fan-out services running",
    )
    result: dict[str, Any] = {"services": count}
    for label, workers in (("sequential", 1), ("pool", 8)):
        digest = images.publish(repo, "stage")
        server = AutodockServer(
            free_port(),
            _workdir(f"fanout-{label}"),
            {
                "workers": workers,
                "discovery": {"labels": False},
                "rules": [{"repo": repo, "tag": "stage", "services": names}],
            },
        ).start()
        t0 = time.monotonic()
        body = {"repo": repo, "tag": "stage", "registry": images.registry, "digest": digest}
        server.post("/hooks/generic", body).raise_for_status()
        deploys = server.wait_final(count, timeout=600)
        result[f"{label}_s"] = time.monotonic() - t0
        result[f"{label}_succeeded"] = sum(d["status"] == "succeeded" for d in deploys)
        server.stop()
        log(f"fan-out {label} ({workers} workers): {result[f'{label}_s']:.1f}s")
    for name in names:
        _remove_service(client, name)
    result["speedup"] = result["sequential_s"] / result["pool_s"]
    return result


# ---------------------------------------------------------------- 6. db clone


def bench_dbclone() -> dict[str, Any] | None:
    script = ROOT / "bench" / "db_clone.py"
    if not script.exists():
        return None
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    data = json.loads(out.stdout)
    return {
        "rows": data["rows"],
        "autodock_rows_per_s": data["autodock_db_clone"]["rows_per_s"],
        "pg_dump_rows_per_s": data["pg_dump_pg_restore"]["rows_per_s"],
        "ratio": data["autodock_db_clone"]["rows_per_s"] / data["pg_dump_pg_restore"]["rows_per_s"],
        "raw": data,
    }


# ---------------------------------------------------------------- report


def write_report(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    lines = [
        "# autodock benchmarks",
        "",
        f"Measured {results['when']} on {results['machine']}. One run, same machine, "
        "peers side by side; compare ratios, not absolute numbers.",
        "",
        "| case | autodock | baseline / peer | ratio or goal |",
        "|---|---|---|---|",
    ]
    intake = _ok(results.get("intake"))
    if intake:
        a, w = intake["autodock"], intake["webhook"]
        lines += [
            f"| intake: acknowledged pushes/s (wrk, {results['params']['connections']} conns) "
            f"| {a['acked_per_s']:.0f} "
            f"| webhook {w['acked_per_s']:.0f} | ×{intake['ratio_req_per_s']:.2f} |",
            f"| intake latency p50 / p99 | {a['p50_us'] / 1000:.1f} / {a['p99_us'] / 1000:.1f} ms "
            f"| {w['p50_us'] / 1000:.1f} / {w['p99_us'] / 1000:.1f} ms | |",
            f"| acknowledged → executed | {a['acknowledged']} → {a['executed']} "
            f"(lost {a['lost']}) | {w['acknowledged']} → {w['executed']} (lost {w['lost']}) "
            "| goal: autodock loses 0 |",
        ]
    over = _ok(results.get("overhead"))
    if over:
        lines += [
            f"| push → converged p50 ({over['rounds']} rounds) | {over['autodock_p50_s']:.2f}s "
            f"| bare API update {over['direct_p50_s']:.2f}s "
            f"| overhead {over['overhead_p50_ms']:.0f} ms (goal ≤ 100) |",
            f"| push → deploy started p50 | {over['push_to_started_p50_ms']:.0f} ms | | |",
        ]
    burst = _ok(results.get("burst"))
    if burst:
        lines.append(
            f"| burst: {burst['pushes']} pushes in {burst['sent_in_s']:.2f}s | "
            f"{burst['deploys_run']} deploys, final = last: {burst['final_is_last_push']} "
            "| | goal ≤ 2 deploys |"
        )
    fan = _ok(results.get("fanout"))
    if fan:
        lines.append(
            f"| fan-out: 1 image → {fan['services']} services | pool(8) {fan['pool_s']:.1f}s "
            f"| sequential {fan['sequential_s']:.1f}s | ×{fan['speedup']:.2f} faster |"
        )
    if intake:
        a = intake["autodock"]
        lines += [
            f"| RSS idle / under load | {a['rss_idle_mb']:.0f} / {a['rss_load_mb']:.0f} MB "
            f"| webhook under load {intake['webhook']['rss_load_mb']:.0f} MB | goal idle ≤ 60 MB |",
            f"| store size per 10k events | {a['store_bytes_per_10k_events'] / 1e6:.1f} MB | | |",
        ]
    db = _ok(results.get("dbclone"))
    if db:
        lines.append(
            f"| DB clone rows/s | {db.get('autodock_rows_per_s', 0):.0f} "
            f"| pg_dump\\|pg_restore {db.get('pg_dump_rows_per_s', 0):.0f} "
            f"| ×{db.get('ratio', 0):.2f} |"
        )
    failed = [
        f"{k}: {v['error']}" for k, v in results.items() if isinstance(v, dict) and "error" in v
    ]
    if failed:
        lines += ["", "Cases that failed in this run: " + "; ".join(failed)]
    lines += ["", "## What each case measures", "", CASES]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    _plot(results)


CASES = """\
1. **Intake**: wrk posts Docker Hub-shaped bodies, each for a different repository, at
   fixed concurrency for a fixed time, to autodock (`POST /autodock/v1/`, basic auth,
   a command rule) and to adnanh's `webhook` 2.8 running the same `bench/record.sh`.
   *Acknowledged* counts 2xx answers; *executed* counts lines the command appended after
   the queue drained. An acknowledged push that never runs is lost work.
2. **Deploy overhead**: the same image change on the same swarm service, alternately
   (a) straight through the Engine API, polling until swarm reports `completed`, and
   (b) by POSTing a push to autodock and waiting until it records the deploy finished.
   The difference of the medians is what autodock adds.
3. **Bursts**: pushes of distinct digests to one service within about a second; counts
   the deploys that actually ran (the others are `superseded`) and checks the final image.
4. **Fan-out**: one push that updates N services, with a worker pool of 8 vs. 1.
5. **Footprint**: resident memory of the autodock process idle and right after the
   intake load; SQLite store size (db + WAL) per 10k events.
6. **DB clone**: rows/s of `autodock db clone` vs. `pg_dump | pg_restore` of the same tables.
"""


def _ok(result: Any) -> dict[str, Any] | None:
    return result if isinstance(result, dict) and "error" not in result else None


def _plot(results: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no PNG (pip install -e .[bench])")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    intake = _ok(results.get("intake"))
    if intake:
        a, w = intake["autodock"], intake["webhook"]
        ax = axes[0]
        xs = range(2)
        ax.bar(
            [x - 0.2 for x in xs], [a["acknowledged"], w["acknowledged"]], 0.4, label="acknowledged"
        )
        ax.bar([x + 0.2 for x in xs], [a["executed"], w["executed"]], 0.4, label="executed")
        ax.set_xticks(list(xs), ["autodock", "webhook"])
        ax.set_title("Intake: acknowledged vs executed")
        ax.legend()
    over = _ok(results.get("overhead"))
    if over:
        ax = axes[1]
        ax.boxplot([over["direct_s"], over["autodock_s"]])
        ax.set_xticks([1, 2], ["bare API", "autodock"])
        ax.set_ylabel("seconds to converged")
        ax.set_title("Deploy: push → converged")
    fan = _ok(results.get("fanout"))
    if fan:
        ax = axes[2]
        ax.bar(["sequential", "pool of 8"], [fan["sequential_s"], fan["pool_s"]])
        ax.set_ylabel("seconds")
        ax.set_title(f"Fan-out to {fan['services']} services")
    fig.tight_layout()
    fig.savefig(RESULTS / "latest.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    parser.add_argument("--only", help="comma-separated cases to run")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    quick = args.quick
    params = {
        "seconds": 5 if quick else 10,
        "connections": 16,
        "rounds": 3 if quick else 7,
        "burst": 20 if quick else 100,
        "fanout": 10 if quick else 50,
    }
    for tool in ("wrk", "webhook"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: run scripts/setup.sh")
    client = ensure_lab()
    registry = start_registry(_workdir("registry"), notify_port=free_port())
    images = Images(client, registry.addr)
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "params": params,
    }

    def want(name: str) -> bool:
        return only is None or name in only

    cases = {
        "intake": lambda: bench_intake(params["seconds"], params["connections"]),
        "overhead": lambda: bench_overhead(client, images, params["rounds"]),
        "burst": lambda: bench_burst(client, images, params["burst"] + 1),
        "fanout": lambda: bench_fanout(client, images, params["fanout"]),
        "dbclone": bench_dbclone,
    }
    try:
        for name, run in cases.items():
            if not (want(name) or (name == "intake" and want("footprint"))):
                continue
            try:
                results[name] = run()
            except Exception as exc:  # one broken case must not cost the others' numbers
                log(f"{name} failed: {exc!r}")
                results[name] = {"error": repr(exc)}
            write_report(results)  # after each case: partial results survive
    finally:
        registry.stop()
    print((RESULTS / "latest.md").read_text())


if __name__ == "__main__":
    main()
