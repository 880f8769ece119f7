#!/usr/bin/env bash
# One command for all benchmarks (about 10 minutes): bench/run.sh [--quick] [--only CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q -e '.[bench]'
scripts/lab-up.sh
exec python3 bench/run.py "$@"
