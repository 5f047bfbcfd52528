#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it, on a fresh Debian machine:
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Keep build output outside the clone so that a rerun is incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/teipsum/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check
step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "build"
cargo build --workspace --locked
teipsum="$CARGO_TARGET_DIR/debug/teipsum"
step "the committed spec is valid"
"$teipsum" check
step "the committed NixOS modules are up to date"
"$teipsum" compile --check
step "every Nix file parses"
git ls-files --cached --others --exclude-standard '*.nix' | while read -r f; do nix-instantiate --parse "$f" >/dev/null || { echo "does not parse: $f"; exit 1; }; done
echo "$(git ls-files --cached --others --exclude-standard '*.nix' | wc -l) files parse"
step "the generated modules against nixos-25.11 (nixos-lite)"
TEIPSUM="$teipsum" scripts/check-nixos.sh
step "the storefront's hashed assets match their contents"
python3 frontend/rehash.py --check
step "tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc
step "the storefront in headless Chromium against teipsum dev"
TEIPSUM="$teipsum" scripts/browser-test.sh
