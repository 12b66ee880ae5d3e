#!/usr/bin/env bash
# Builds and serves the app (bundled model + sample dataset) at http://127.0.0.1:8080/.
# First run on a fresh machine: installs the pinned tools, then a release build of burn for wasm (~15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
cargo fetch --target wasm32-unknown-unknown --quiet   # Trunk builds offline
PORT="${PORT:-8080}"
echo "Building… then open http://127.0.0.1:${PORT}/  (?backend=webgpu or ?backend=cpu to force a backend)"
exec trunk serve --port "$PORT"
