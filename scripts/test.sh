#!/usr/bin/env bash
# The test command: set up a fresh machine if needed, start the lab (dockerd in swarm
# mode, registry, test image), lint, and run the whole suite against real services.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/lab-up.sh
ruff check src tests
ruff format --check src tests
set +e
python3 -m pytest -p no:cacheprovider -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1   # a run that tests nothing is not a pass
fi
exit "$rc"
