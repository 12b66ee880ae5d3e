# Shared environment for the project scripts (sourced, not run).
# Build outputs live outside the clone so a fresh clone reuses them and `git clean` never costs a rebuild.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ajuste/target}"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$CARGO_HOME/bin:$ROOT/node_modules/.bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
