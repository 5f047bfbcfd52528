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
step "the locked crates build with the pinned nixpkgs' rustc (nix/toolchain)"
scripts/check-toolchain.sh
# ...and the check fails on the defect it guards against: a locked crate
# that needs a newer rustc (parking_lot 0.13 needed 1.95).
too_new="$(mktemp)"
cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu \
  | jq '.packages += [{name: "parking_lot", version: "0.13.0", rust_version: "1.99"}]' >"$too_new"
if scripts/check-toolchain.sh "$too_new" 2>/dev/null; then echo "the toolchain check let a crate needing rustc 1.99 through"; exit 1; fi
rm -f "$too_new"
echo "toolchain: a crate that needs rustc 1.99 is refused"
if TEIPSUM_TODAY=2099-01-01 scripts/check-toolchain.sh 2>/dev/null; then echo "the release check let an unsupported release through"; exit 1; fi
echo "toolchain: a release past its support is refused"
step "a bare Debian root builds the native crates with only what setup.sh installs"
scripts/clean-room.sh --if-changed
step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "the documentation builds without warnings (broken intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
step "every declared dependency is used"
cargo machete
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
step "the NixOS modules, the flake outputs and the production edge against nixos-26.05 (nixos-lite)"
TEIPSUM="$teipsum" scripts/check-nixos.sh
step "the storefront's hashed assets match their contents"
python3 frontend/rehash.py --check
step "tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc
step "schemathesis against teipsum dev, from the OpenAPI document the edge serves"
TEIPSUM="$teipsum" scripts/api-fuzz.sh
step "the storefront in headless Chromium against teipsum dev"
TEIPSUM="$teipsum" scripts/browser-test.sh
