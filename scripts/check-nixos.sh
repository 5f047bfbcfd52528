#!/usr/bin/env bash
# Check the generated NixOS modules against the real nixos-25.11 option
# declarations with nixos-lite (../shared/tools/nixos-lite): option names,
# types, removed options, assertions. It needs a partial nixpkgs tree in
# ~/.cache/nixos-lite/nixpkgs, which only a session with the search tool can
# populate (README, "Checking the NixOS modules"); without it this prints why
# and exits 0, and the allow-list test still guards the option names.
set -euo pipefail
cd "$(dirname "$0")/.."
teipsum="${TEIPSUM:-$CARGO_TARGET_DIR/debug/teipsum}"

tool=""
for candidate in "${NIXOS_LITE:-}" ../shared/tools/nixos-lite /work/shared/tools/nixos-lite; do
  if [ -n "$candidate" ] && [ -x "$candidate/check.sh" ]; then tool="$candidate"; break; fi
done
cache="${NIXOS_LITE_NIXPKGS:-${XDG_CACHE_HOME:-$HOME/.cache}/nixos-lite/nixpkgs}"
if [ -z "$tool" ] || [ ! -f "$cache/nixos/modules/services/databases/postgresql.nix" ]; then
  echo "nixos-lite: not available on this machine (tool: ${tool:-missing}, nixpkgs files: $cache); skipped"
  exit 0
fi

kraft="$(mktemp -d)"
trap 'rm -rf "$kraft"' EXIT
"$teipsum" -f crates/nixgen/tests/fixtures/kraft.ncl compile --out "$kraft" >/dev/null
for dir in nix/generated/prod nix/generated/stage "$kraft/prod"; do
  "$tool/check.sh" \
    --extra-module nix/modules/teipsum.nix \
    --extra-module scripts/nixos-lite-packages.nix \
    "$dir"
done
# The hand-written module that creates the signing key.
"$tool/check.sh" \
  --extra-module nix/modules/teipsum.nix \
  --extra-module scripts/nixos-lite-packages.nix \
  nix/modules/jwt-key.nix
