#!/usr/bin/env bash
# The main job on a fresh machine: install, bring up a local swarm + registry whose
# notifications reach autodock, deploy a demo service, and run `autodock serve` with
# examples/autodock.yml in the foreground (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export AUTODOCK_HTTP_AUTH_USER="${AUTODOCK_HTTP_AUTH_USER:-autodock}"
export AUTODOCK_HTTP_AUTH_PASS="${AUTODOCK_HTTP_AUTH_PASS:-change-me}"
# The registry authenticates like any client: credentials in the URL become basic auth.
scripts/lab-up.sh "http://${AUTODOCK_HTTP_AUTH_USER}:${AUTODOCK_HTTP_AUTH_PASS}@127.0.0.1:58732/hooks/registry"
if ! docker service inspect demo_web >/dev/null 2>&1; then
  docker tag lab/busybox:1 127.0.0.1:5000/demo/web:stage
  docker push -q 127.0.0.1:5000/demo/web:stage >/dev/null
  docker service create -q --name demo_web --label autodock.repo=demo/web \
    --update-monitor 2s --stop-grace-period 1s 127.0.0.1:5000/demo/web:stage >/dev/null
fi
cat >&2 <<MSG
[run] demo service demo_web follows demo/web:stage. Try, in another shell:
        printf 'FROM lab/busybox:1\nLABEL v=%s\n' \$RANDOM | docker build -q -t 127.0.0.1:5000/demo/web:stage -
        docker push 127.0.0.1:5000/demo/web:stage
        autodock history -c examples/autodock.yml
MSG
exec autodock serve --config examples/autodock.yml
