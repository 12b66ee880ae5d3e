#!/usr/bin/env bash
# Installs every tool the project needs, pinned, idempotently. Safe to run again: each step is skipped when
# its tool is already present at the pinned version. Nothing is downloaded from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal wasm-bindgen in Cargo.lock (Cargo.toml pins it with =)
TRUNK_VERSION=0.21.14          # 0.22 needs a newer rustc than this machine's 1.95
BINARYEN_VERSION=132.0.0       # Debian's wasm-opt 108 silently breaks wasm-bindgen 0.2.130 output

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PWD/node_modules/.bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

say() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  say "installing chromium and chromium-driver (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # --locked fails for this version here (its lock wants a webpki-roots the registry does not serve)
  cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
fi

if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (about 10 minutes)"
  cargo install -q trunk --version "=$TRUNK_VERSION" --locked --force
fi

# npm packages: binaryen (wasm-opt) and playwright-core, pinned in package-lock.json
if [ ! -x node_modules/.bin/wasm-opt ] || [ "$(node_modules/.bin/wasm-opt --version | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ] \
   || [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

say "tools ready: $(wasm-bindgen --version), $(trunk --version), wasm-opt $(node_modules/.bin/wasm-opt --version | awk '{print $3}'), $(chromium --version 2>/dev/null)"
