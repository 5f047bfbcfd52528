#!/usr/bin/env bash
# The Rust toolchain that `nix build` uses is the rustc of the nixpkgs that
# flake.lock pins, and nixpkgs' cargo build hook does not pass
# `--ignore-rust-version`: a locked crate that declares a newer
# `rust-version` breaks `nix build` while `cargo build` here (a newer rustup
# toolchain) stays green. This check fails in that case.
#
#   scripts/check-toolchain.sh                 # the workspace
#   scripts/check-toolchain.sh METADATA.json   # a `cargo metadata` output (the self-test)
#
# nix/toolchain records which rustc the pinned nixpkgs has; it must name the
# nixpkgs revision of flake.lock, so that bumping the lock without looking up
# the new rustc fails here too. The workspace's `rust-version` must be that
# rustc (major.minor), which also makes clippy's `incompatible_msrv` lint
# reject std APIs newer than it.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "toolchain: $*" >&2; exit 1; }

read -r _ pinned_rev _ pinned_rustc < <(grep -v '^#' nix/toolchain | grep '^nixpkgs ')
lock_rev="$(jq -r '.nodes[.nodes.root.inputs.nixpkgs].locked.rev' flake.lock)"
[ "$pinned_rev" = "$lock_rev" ] \
  || fail "flake.lock pins nixpkgs $lock_rev but nix/toolchain describes $pinned_rev: look up that revision's rustc (pkgs/development/compilers/rust/) and update nix/toolchain"

# The pinned release must still be supported.
read -r _ release _ until < <(grep -v '^#' nix/toolchain | grep '^release ')
lock_ref="$(jq -r '.nodes[.nodes.root.inputs.nixpkgs].original.ref' flake.lock)"
[ "$release" = "$lock_ref" ] \
  || fail "flake.lock follows $lock_ref but nix/toolchain describes $release"
today="${TEIPSUM_TODAY:-$(date -u +%F)}"
if [[ "$today" > "$until" ]]; then
  fail "$release is out of support since $until: move flake.nix and flake.lock to the supported NixOS release"
elif [[ "$(date -u -d "$until - 30 days" +%F)" < "$today" ]]; then
  echo "toolchain: warning: $release leaves support on $until; plan the move to the next release" >&2
fi

# major.minor[.patch] as one comparable number.
version_number() {
  local IFS=.
  read -r major minor patch <<<"$1"
  echo $((major * 1000000 + minor * 1000 + ${patch:-0}))
}

workspace="$(sed -n '/^\[workspace.package\]/,/^\[/s/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)"
[ "$workspace" = "${pinned_rustc%.*}" ] \
  || fail "Cargo.toml's workspace rust-version is \"$workspace\"; the pinned nixpkgs has rustc $pinned_rustc, so it must be \"${pinned_rustc%.*}\""

if [ $# -ge 1 ]; then
  metadata="$(cat "$1")"
else
  metadata="$(cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu)"
fi
limit="$(version_number "$pinned_rustc")"
too_new=()
while read -r name version rust_version; do
  if [ "$(version_number "$rust_version")" -gt "$limit" ]; then
    too_new+=("$name $version needs rustc $rust_version")
  fi
done < <(jq -r '.packages[] | select(.rust_version != null) | "\(.name) \(.version) \(.rust_version)"' <<<"$metadata")

if [ ${#too_new[@]} -gt 0 ]; then
  printf 'toolchain: the pinned nixpkgs has rustc %s, but Cargo.lock holds crates that need a newer one:\n' "$pinned_rustc" >&2
  printf '  %s\n' "${too_new[@]}" >&2
  echo "toolchain: pin an older version (cargo update -p NAME --precise VERSION) or move the flake to a nixpkgs with a newer rustc" >&2
  exit 1
fi
echo "toolchain: every locked crate builds with rustc $pinned_rustc (nixpkgs ${pinned_rev:0:12}, $release, supported until $until), the workspace's rust-version"
