#!/usr/bin/env bash
# Bring up what autodock needs on one machine, idempotently: a Docker engine in swarm
# mode, a Registry v2 on 127.0.0.1:5000 and a tiny test image (lab/busybox:1) built
# without pulling anything. Starts only what is missing; records pids under $STATE.
#   scripts/lab-up.sh [NOTIFY_URL]     NOTIFY_URL: where the registry sends push events
set -euo pipefail
NOTIFY_URL="${1:-}"
STATE="${AUTODOCK_LAB_STATE:-/tmp/autodock-lab}"
REGISTRY_ADDR="${AUTODOCK_LAB_REGISTRY:-127.0.0.1:5000}"
mkdir -p "$STATE"
say() { printf '[lab] %s\n' "$*" >&2; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v iptables >/dev/null || need+=(iptables)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  setsid dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null || { tail -20 "$STATE/dockerd.log" >&2; exit 1; }
fi

if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
  say "initialising swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null 2>&1 \
    || docker swarm init --advertise-addr "$(hostname -I | awk '{print $1}')" >/dev/null
fi

# A registry we started earlier without the wanted notification URL: start it again.
if [ -n "$NOTIFY_URL" ] && [ -f "$STATE/registry.pid" ] \
  && ! grep -qF "$NOTIFY_URL" "$STATE/registry.yml" 2>/dev/null; then
  say "restarting registry to notify $NOTIFY_URL"
  kill "$(cat "$STATE/registry.pid")" 2>/dev/null || true
  for _ in $(seq 20); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 || break; sleep 0.25; done
fi
if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  say "starting registry on $REGISTRY_ADDR"
  mkdir -p "$STATE/registry"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage: {filesystem: {rootdirectory: $STATE/registry}, delete: {enabled: true}}"
    echo "http: {addr: $REGISTRY_ADDR}"
    if [ -n "$NOTIFY_URL" ]; then
      echo "notifications:"
      echo "  endpoints:"
      echo "    - {name: autodock, url: \"$NOTIFY_URL\", timeout: 2s, threshold: 5, backoff: 1s}"
    fi
  } >"$STATE/registry.yml"
  setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 30); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break; sleep 0.5; done
fi

if ! docker image inspect lab/busybox:1 >/dev/null 2>&1; then
  say "building lab/busybox:1 from busybox-static"
  root="$STATE/rootfs"; rm -rf "$root"; mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
  echo ok >"$root/www/index.html"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/bin/httpd","-f","-p","8000","-h","/www"]' \
    -c 'ENV PATH=/bin' - lab/busybox:1 >/dev/null
fi
say "up: swarm $(docker info --format '{{.Swarm.LocalNodeState}}'), registry $REGISTRY_ADDR, image lab/busybox:1"
