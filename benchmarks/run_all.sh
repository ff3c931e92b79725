#!/usr/bin/env bash
# Run every Pulse benchmark in sequence (about 12-15 minutes on a 2-core machine):
#   benchmarks/run_all.sh [extra arguments for bench_ingest.py]
# Each benchmark cleans up after itself (temp dirs, Mosquitto, Ray). Output: stdout; progress: stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

run() {
  echo "==================== $1 ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  "$PY" "benchmarks/$@"
  echo
}

run bench_lake.py
run bench_memory.py
run bench_serve.py
run bench_rules.py
run bench_analytics.py
run bench_ingest.py "$@"
