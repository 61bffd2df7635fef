#!/usr/bin/env bash
# Quick start: install dependencies, build, and run Gatehouse. Without arguments it runs
# the embedded default config (127.0.0.1:8080 -> 127.0.0.1:3000, admin 127.0.0.1:9901);
# arguments are passed on, e.g. scripts/run.sh -c deploy/gatehouse.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
exec build/proxy/gatehouse "$@"
