#!/usr/bin/env bash
# The whole platform on this machine, from a fresh clone, in one command:
#   scripts/dev.sh [teipsum dev options, e.g. --env stage --state-dir .dev]
# Installs what is missing, builds the workspace (the services, teipsum and
# teipsum-dev, which `teipsum dev` runs), then runs `teipsum dev`: PostgreSQL,
# tansu, the six services and nginx on https://localhost:8443.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/teipsum/target}"
cargo build --workspace --locked
exec "$CARGO_TARGET_DIR/debug/teipsum" dev "$@"
