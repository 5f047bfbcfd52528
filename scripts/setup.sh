#!/usr/bin/env bash
# Install what the tests and `teipsum dev` need on a Debian machine. Safe to
# re-run: it installs only what is missing, so on a prepared machine it takes
# a second. Needs root (or sudo) for apt.
#   scripts/setup.sh                 everything: Debian packages, the Node.js check, cargo tools
#   scripts/setup.sh --system-only   the Debian packages only (what compiling and the tests need)
#   scripts/setup.sh --build-only    the Debian packages that compiling the workspace needs
# scripts/clean-room.sh runs the --system-only mode in a bare Debian root, so a
# package missing here fails there too.
set -euo pipefail

mode=all
case "${1:-}" in
  "") ;;
  --system-only) mode=system ;;
  --build-only) mode=build ;;
  *) echo "usage: $0 [--system-only | --build-only]" >&2; exit 2 ;;
esac

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

packages=()
want() { # want <command-or-path> <debian package>
  if [[ "$1" == /* ]]; then [ -e "$1" ] || packages+=("$2")
  else command -v "$1" >/dev/null 2>&1 || packages+=("$2"); fi
}
want_python_module() { # want_python_module <module> <debian package>, for Debian's python3
  /usr/bin/python3 -c "import $1" 2>/dev/null || packages+=("$2")
}
want_header() { # want_header <header> <debian package>: in /usr/include or its multiarch directory
  compgen -G "/usr/include/$1" >/dev/null || compgen -G "/usr/include/*/$1" >/dev/null || packages+=("$2")
}

# What compiling the workspace needs: ring, libz-sys and rdkafka-sys (librdkafka,
# built from source with CMake) have native build steps.
want cc gcc                                            # C compiler; also rustc's linker
want c++ g++                                           # librdkafka's CMake project enables C++
want make make                                         # CMake's generator
want_header stdio.h libc6-dev                          # C library headers (gcc only recommends them)
want cmake cmake                                       # librdkafka is built from source
want pkg-config pkg-config                             # libz-sys and rdkafka-sys look for libraries
want_header zlib.h zlib1g-dev                          # the system zlib for rdkafka's `libz`, as in nix/package.nix
# librdkafka 2.12 includes <curl/curl.h> even when it is built without curl
# (WITH_CURL=0; confluentinc/librdkafka#5135, #5204), so the headers must be
# there although nothing links libcurl. A path check: libcurl4-gnutls-dev
# provides the same header and conflicts with this package.
want_header curl/curl.h libcurl4-openssl-dev
want /etc/ssl/certs/ca-certificates.crt ca-certificates  # cargo downloads crates over HTTPS

# What the tests and `teipsum dev` need besides.
if [ "$mode" != build ]; then
  want git git                                         # test.sh lists the files to check
  want /usr/lib/postgresql/15/bin/initdb postgresql-15 # throw-away test clusters
  want nginx nginx                                     # the edge, with the rendered config
  want nix-instantiate nix-bin                         # parse generated Nix
  want jq jq
  want systemd-analyze systemd                         # score the unit files offline
  want hyperfine hyperfine                             # benchmarks
  want wrk wrk                                         # HTTP load for teipsum-bench
  want openssl openssl                                 # development certificates
  want python3 python3                                 # frontend/rehash.py
  want chromium chromium                               # the storefront's browser test
  want debootstrap debootstrap                         # scripts/clean-room.sh
  want ssh-keygen openssh-client                       # check-nixos.sh: a test operator key
  want ip iproute2                                     # check-edge.sh: its network namespace
  want_python_module pyflakes python3-pyflakes         # nixos-lite lints the VM test scripts
  want_python_module venv python3-venv                 # api-fuzz.sh: schemathesis' venv
  want_python_module ensurepip python3-venv
  want promtool prometheus                             # promtool check/test rules of the generated alerts
  want zstd zstd                                       # teipsum restore decodes the nightly dumps (crates/e2e/tests/restore.rs)
  want gzip gzip
  want prometheus-alertmanager prometheus-alertmanager # the alerts' delivery, against the dev stack
  want prometheus-node-exporter prometheus-node-exporter         # teipsum dev's monitoring: the host
  want prometheus-postgres-exporter prometheus-postgres-exporter # ... the dev cluster
  want prometheus-nginx-exporter prometheus-nginx-exporter       # ... the dev edge's status page
fi

if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing ${packages[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# Debian starts the daemons it installs where systemd runs; the tests start
# their own, and Debian's Prometheus would hold 9090, the auth service's port
# (its exporters 9100, 9187 and 9113, which teipsum dev's own would use).
if [ "$mode" != build ] && [ -d /run/systemd/system ]; then
  for unit in prometheus.service prometheus-alertmanager.service prometheus-node-exporter.service \
    prometheus-postgres-exporter.service prometheus-nginx-exporter.service; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      echo "setup: stopping and disabling Debian's $unit (the tests run their own)"
      "${sudo_cmd[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi

# Node.js and the cargo tools are not Debian packages: the other modes stop here.
[ "$mode" = all ] || exit 0

# The browser test is driven by Node.js 20 or newer (playwright-core, from npm).
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "setup: the browser test needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# A python3 that is not Debian's (pyenv, say) does not see Debian's modules.
if ! python3 -c 'import pyflakes' 2>/dev/null; then
  echo "setup: installing pyflakes for $(command -v python3)"
  python3 -m pip install --quiet pyflakes==3.4.0
fi

# Schemathesis (scripts/api-fuzz.sh), pinned, in a venv of Debian's python3
# (python3-venv) under ~/.cache, with openapi-spec-validator for the served
# document.
schemathesis_venv="${SCHEMATHESIS_VENV:-$HOME/.cache/teipsum/schemathesis}"
if ! "$schemathesis_venv/bin/st" --version 2>/dev/null | grep -q ' 4\.32\.5$' \
  || ! "$schemathesis_venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
  echo "setup: installing schemathesis 4.32.5 in $schemathesis_venv"
  /usr/bin/python3 -m venv "$schemathesis_venv"
  "$schemathesis_venv/bin/pip" install --quiet schemathesis==4.32.5 openapi-spec-validator==0.9.0
fi

# cargo tools, built once per machine and reused from ~/.cargo/bin.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# cargo-machete: declared dependencies nothing uses (test.sh fails on one).
if ! command -v cargo-machete >/dev/null 2>&1; then
  echo "setup: installing cargo-machete"
  cargo install cargo-machete --locked
fi
# tansu: an Apache-2.0 Kafka-compatible broker, the real broker of the tests.
# Its in-memory storage needs the `dynostore` feature (`postgres` lets it keep
# data in PostgreSQL). Building it takes about 25 minutes on 2 cores, hence
# the check of what is already installed.
tansu_features() {
  jq -r '.installs | to_entries[] | select(.key | startswith("tansu 0.6.0")) | .value.features | join(",")' \
    "${CARGO_HOME:-$HOME/.cargo}/.crates2.json" 2>/dev/null || true
}
if ! command -v tansu >/dev/null 2>&1 || [[ ",$(tansu_features)," != *",dynostore,"* ]]; then
  echo "setup: installing tansu 0.6.0 with in-memory storage (about 25 minutes, once per machine)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,postgres --force
fi
