#!/usr/bin/env bash
# Install what the tests and `teipsum dev` need on a Debian machine. Safe to
# re-run: it installs only what is missing, so on a prepared machine it takes
# a second. Needs root (or sudo) for apt.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

packages=()
want() { # want <command-or-path> <debian package>
  if [[ "$1" == /* ]]; then [ -e "$1" ] || packages+=("$2")
  else command -v "$1" >/dev/null 2>&1 || packages+=("$2"); fi
}
want /usr/lib/postgresql/15/bin/initdb postgresql-15   # throw-away test clusters
want nginx nginx                                       # the edge, with the rendered config
want nix-instantiate nix-bin                           # parse generated Nix
want jq jq
want cmake cmake                                       # librdkafka is built from source
want pkg-config pkg-config
want systemd-analyze systemd                           # score the unit files offline
want hyperfine hyperfine                               # benchmarks
want wrk wrk                                           # HTTP load for teipsum-bench
want openssl openssl                                   # development certificates
want python3 python3                                   # frontend/rehash.py
want chromium chromium                                 # the storefront's browser test

if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing ${packages[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# The browser test is driven by Node.js 20 or newer (playwright-core, from npm).
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "setup: the browser test needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# cargo tools, built once per machine and reused from ~/.cargo/bin.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# tansu: an Apache-2.0 Kafka-compatible broker, the real broker of the tests.
# Its in-memory storage needs the `dynostore` feature (`postgres` lets it keep
# data in PostgreSQL). Building it takes about 30 minutes on 2 cores, hence
# the check of what is already installed.
tansu_features() {
  jq -r '.installs | to_entries[] | select(.key | startswith("tansu 0.6.0")) | .value.features | join(",")' \
    "${CARGO_HOME:-$HOME/.cargo}/.crates2.json" 2>/dev/null || true
}
if ! command -v tansu >/dev/null 2>&1 || [[ ",$(tansu_features)," != *",dynostore,"* ]]; then
  echo "setup: installing tansu 0.6.0 with in-memory storage (about 30 minutes, once per machine)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,postgres --force
fi
