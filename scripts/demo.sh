#!/usr/bin/env bash
# Set up (idempotent), then run the main job: the bundled YOLOX-nano on the bundled sample video.
# Writes out/annotated.mp4, out/events.jsonl and out/summary.json, and prints a summary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
exec edge-vision run "$@"
