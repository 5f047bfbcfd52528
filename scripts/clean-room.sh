#!/usr/bin/env bash
# Build the crates that have native build steps in a freshly bootstrapped
# Debian root that holds nothing but what scripts/setup.sh installs, so that a
# system package missing from setup.sh fails here and not on someone's new
# machine (docs/clean-room.md).
#   scripts/clean-room.sh                the check
#   scripts/clean-room.sh --if-changed   only when its inputs changed since the last pass
#   scripts/clean-room.sh --build-only   setup.sh --build-only in the root (skips the test-time packages)
#   scripts/clean-room.sh --fresh        as on a new machine: bootstrap the root again and let
#                                        cargo download crates instead of reusing ~/.cargo/registry
# CLEAN_ROOM_DROP="pkg ..." deletes those packages' `want` lines from the copy
# of setup.sh in the root, to show that the check catches a missing package;
# such a run never writes the stamp. CLEAN_ROOM_TMPFS=0 keeps the root's
# changes on disk, and after a failure, for a look.
# Needs root (debootstrap, mounts, chroot). Every mount lives in a private
# mount namespace, so nothing stays mounted when the script ends, however it
# ends; with 6 GiB of memory free the root's changes live in a tmpfs there too.
set -euo pipefail

if [ "${1:-}" = __namespace ]; then in_namespace=1; shift; else in_namespace=0; fi

if_changed=0 fresh=0 setup_mode=--system-only
for arg; do
  case "$arg" in
    --if-changed) if_changed=1 ;;
    --build-only) setup_mode=--build-only ;;
    --fresh) fresh=1 ;;
    *) echo "usage: $0 [--if-changed] [--build-only] [--fresh]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  exec sudo env HOME="$HOME" XDG_CACHE_HOME="${XDG_CACHE_HOME:-}" \
    RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
    CLEAN_ROOM_DROP="${CLEAN_ROOM_DROP:-}" CLEAN_ROOM_TMPFS="${CLEAN_ROOM_TMPFS:-}" "$0" "$@"
fi

cd "$(dirname "$0")/.."
repo=$PWD
cache="${XDG_CACHE_HOME:-$HOME/.cache}/teipsum/clean-room"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# shellcheck source=/dev/null
suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
arch="$(dpkg --print-architecture)"
pristine="$cache/$suite-$arch"   # debootstrap's result, never written to after
run="$cache/run"                 # this run: the overlay's upper and work directories, the merged root
logs="$cache/logs"
root="$run/root"
drop="${CLEAN_ROOM_DROP:-}"

say() { printf 'clean-room: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

# One step of the check: its output goes to $logs/<name>.log; on failure, the
# error lines and the tail of that log, and the script exits non-zero.
step() { # step <name> <command...>
  local name=$1 t0=$SECONDS; shift
  local log="$logs/$name.log"
  printf 'clean-room: %-10s ' "$name"
  if "$@" >"$log" 2>&1; then
    printf 'ok (%ss)\n' $((SECONDS - t0))
    return
  fi
  printf 'FAILED (%ss)\n' $((SECONDS - t0))
  {
    say "step '$name' failed in the clean $suite root; the errors:"
    grep -E '(fatal )?error(\[E[0-9]+\])?:|^E: |No such file or directory|was not found' "$log" | head -n 15 || true
    say "the last 40 lines of $log:"
    tail -n 40 "$log"
  } >&2
  exit 1
}

git_() { git -c safe.directory="$repo" "$@"; }
# The files git tracks, as they are in the working tree (tracked files that
# were deleted are left out), so uncommitted edits are checked too.
tree_files() { # tree_files [pathspec...]
  git_ ls-files -z --cached -- "$@" |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done
}

# ---------------------------------------------------------------- inside the namespace
# Private mount and PID namespaces (unshare below): the mounts vanish and any
# process started in the root is killed when this part ends.
if [ "$in_namespace" = 1 ]; then
  proxy_env=()  # the host's proxy settings, if any, and nothing else of its environment
  for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -z "${!var:-}" ] || proxy_env+=("$var=${!var}")
  done
  ro_bind() { mount --bind "$1" "$2" && mount -o remount,bind,ro "$2"; }
  in_root() {
    env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb \
      PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      RUSTUP_HOME=/root/.rustup CARGO_HOME=/root/.cargo CARGO_TARGET_DIR=/build/target \
      CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never "${proxy_env[@]}" \
      chroot "$root" bash -c 'cd /src && "$@"' in-root "$@"
  }

  [ "$use_tmpfs" = 0 ] || mount -t tmpfs -o mode=0755 clean-room "$run"
  mkdir -p "$run/upper/src" "$run/work" "$root"
  # The source: the working tree's tracked files.
  tree_files | tar -C "$repo" --null --no-recursion -T - -cf - | tar -C "$run/upper/src" -xf -
  if [ -n "$drop" ]; then
    for pkg in $drop; do
      line="^[[:space:]]*want(_header)?[[:space:]]+[^[:space:]]+[[:space:]]+$(sed 's/[][\\.*^$+?(){}|/]/\\&/g' <<<"$pkg")([[:space:]]|\$)"
      grep -Eq "$line" "$run/upper/src/scripts/setup.sh" || die "CLEAN_ROOM_DROP: scripts/setup.sh does not want $pkg"
      sed -i -E "/$line/d" "$run/upper/src/scripts/setup.sh"
    done
    say "CLEAN_ROOM_DROP: setup.sh in the root does not install: $drop"
  fi

  mount -t overlay clean-room -o "lowerdir=$pristine,upperdir=$run/upper,workdir=$run/work" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin" "$root/root/.cargo/registry"
  ro_bind "$rustup_home" "$root/root/.rustup"
  ro_bind "$cargo_home/bin" "$root/root/.cargo/bin"
  if [ "$fresh" = 0 ] && [ -d "$cargo_home/registry" ]; then
    # The host's crates, without writing to them: cargo's writes land in this run's directory.
    mkdir -p "$run/registry-upper" "$run/registry-work"
    mount -t overlay registry \
      -o "lowerdir=$cargo_home/registry,upperdir=$run/registry-upper,workdir=$run/registry-work" \
      "$root/root/.cargo/registry"
  fi
  rm -f "$root/etc/resolv.conf" && cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # The host's Debian sources (the suite, -updates and -security), instead of
  # debootstrap's single line.
  rm -f "$root/etc/apt/sources.list"
  if [ -e /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  else
    cp /etc/apt/sources.list "$root/etc/apt/sources.list"
  fi
  # The host's site-local CAs (those of a TLS-inspecting proxy, say): once
  # setup.sh installs ca-certificates, the root trusts what the host trusts.
  if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  # A throw-away root: dpkg need not sync every file it unpacks.
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/clean-room"
  # Packages' maintainer scripts must not start nginx or PostgreSQL here.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"

  step setup in_root scripts/setup.sh "$setup_mode"
  host_triple="$(in_root rustc -vV | sed -n 's/^host: //p')" || die "rustc does not run in the root"
  step metadata in_root cargo metadata --locked --format-version 1 --filter-platform "$host_triple"
  # Packages with a build script that are *-sys crates or use cc, cmake,
  # pkg-config or bindgen to build: the native build steps.
  mapfile -t crates < <(jq -r '
    (.packages | map({key: .id, value: .}) | from_entries) as $pkg
    | .resolve.nodes[] | . as $node | $pkg[.id] as $p
    | select(any($p.targets[]; .kind | index("custom-build")))
    | select(($p.name | endswith("-sys"))
        or any($node.deps[]; any(.dep_kinds[]; .kind == "build")
                             and (.name | IN("cc", "cmake", "pkg_config", "bindgen"))))
    | "\($p.name)@\($p.version)"' <(grep '^{' "$logs/metadata.log") | sort -u)
  [ ${#crates[@]} -gt 0 ] || die "cargo metadata names no crate with a native build step"
  say "crates with native build steps: ${crates[*]}"
  packages=()
  for crate in "${crates[@]}"; do packages+=(-p "$crate"); done
  step build in_root cargo build --locked "${packages[@]}"
  exit 0
fi

# ---------------------------------------------------------------- on the host
[ -n "$suite" ] || die "no VERSION_CODENAME in /etc/os-release"
for tool in debootstrap unshare chroot jq git; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh --system-only installs it)"
done
[ -x "$cargo_home/bin/cargo" ] || die "no cargo in $cargo_home/bin"
[ -d "$rustup_home/toolchains" ] || die "no rustup toolchains in $rustup_home"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || { say "waiting for another run ($cache/lock)"; flock 9; }

inputs_hash() {
  {
    echo "$suite $arch $setup_mode"
    tree_files scripts/setup.sh scripts/clean-room.sh Cargo.lock \
      ':(glob)**/Cargo.toml' ':(glob)**/build.rs' | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}
hash="$(inputs_hash)"
stamp="$cache/stamp"
if [ "$if_changed" = 1 ] && [ -z "$drop" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
  say "inputs unchanged since the last pass ($stamp), skipping"
  exit 0
fi

t_start=$SECONDS
rm -rf "$logs" && mkdir -p "$logs"

# The pristine root: debootstrap --variant=minbase of the host's suite from the
# host's own mirror, made once and only ever used as the lower layer of an
# overlay, so every check starts from it untouched.
mirror_of_host() {
  if [ -e /etc/apt/sources.list.d/debian.sources ]; then
    awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources
  elif [ -e /etc/apt/sources.list ]; then
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' /etc/apt/sources.list
  fi
}
bootstrap() {
  rm -rf "$pristine.tmp"
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase "$suite" "$pristine.tmp" "$mirror"
  mv "$pristine.tmp" "$pristine"
}
if [ "$fresh" = 1 ]; then rm -rf "$pristine" "$pristine.tmp"; fi
if [ ! -d "$pristine" ]; then
  mirror="$(mirror_of_host)"
  [ -n "$mirror" ] || die "no Debian mirror in the host's apt sources"
  say "bootstrapping a minimal $suite root from the host's apt mirror (once; cached in $pristine)"
  step bootstrap bootstrap
fi

# This run's root changes: in a tmpfs of the namespace when memory allows
# (written fast, gone with the namespace), else on disk, removed after a pass.
[ ! -e "$run" ] || { say "removing the root of an earlier run that failed"; rm -rf "$run"; }
mkdir -p "$run"
use_tmpfs="${CLEAN_ROOM_TMPFS:-}"  # 0: on disk, and kept after a failure for a look
if [ -z "$use_tmpfs" ]; then
  use_tmpfs=0
  [ "$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)" -lt $((6 * 1024 * 1024)) ] || use_tmpfs=1
fi
export use_tmpfs
status=0
unshare --mount --propagation private --pid --fork --kill-child -- \
  bash "$repo/scripts/clean-room.sh" __namespace "$@" || status=$?
if [ "$status" != 0 ]; then
  say "FAILED after $((SECONDS - t_start))s (logs: $logs$([ "$use_tmpfs" = 1 ] || echo "; the root's changes: $run/upper"))"
  [ "$use_tmpfs" = 0 ] || rmdir "$run"
  exit "$status"
fi
rm -rf "$run"
[ -n "$drop" ] || echo "$hash" >"$stamp"
say "passed in $((SECONDS - t_start))s"
