#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check and run the whole test suite against real ROS 2, video and models.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
ruff check src test launch
mypy
python -m pytest -ra "$@"
