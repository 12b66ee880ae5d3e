#!/usr/bin/env bash
# Peers benchmark (onnxruntime-web + tfjs in headless Chromium). All arguments go to run.py; see ./run.sh --help.
# The ONNX model is built from the shipped weights by make_onnx.py (about a second) when missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"
weights=../../public/models/efficientnet_lite0.safetensors
if [ ! -f effl0_embed.onnx ] || [ effl0_embed.onnx -ot "$weights" ] || [ effl0_embed.onnx -ot make_onnx.py ]; then
  python3 make_onnx.py >&2
fi
exec python3 run.py "$@"
