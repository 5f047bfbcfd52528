#!/usr/bin/env bash
# The storefront's end-to-end test: headless Chromium against `teipsum dev`.
#
#   cargo build --workspace && scripts/browser-test.sh
#
# 1. installs Debian's chromium if it is missing, and the test's npm packages
#    (npm ci) if node_modules is missing or older than package-lock.json;
# 2. starts `teipsum dev` with a temporary state directory, nginx on free
#    ports, and waits until it says it is running;
# 3. runs browser-tests/ against it as the administrator teipsum dev created
#    (its admin.json), screenshots in browser-tests/artifacts/,
#    and renders `teipsum graph` with Mermaid (graph.test.js);
# 4. stops the stack whatever happens, and exits with the tests' status.
#
# TEIPSUM: the teipsum binary (default: $CARGO_TARGET_DIR/debug/teipsum, as
# scripts/test.sh builds it). CHROMIUM: the browser (default /usr/bin/chromium).
# Every port is a free one, so the test can run beside another stack.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

teipsum="${TEIPSUM:-${CARGO_TARGET_DIR:-$HOME/.cache/teipsum/target}/debug/teipsum}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
tests="$root/browser-tests"
artifacts="$tests/artifacts"

say() { printf 'browser-test: %s\n' "$*" >&2; }

if [ ! -x "$teipsum" ]; then
  say "no teipsum binary at $teipsum; build the workspace first (cargo build --workspace) or set TEIPSUM"
  exit 2
fi
# `teipsum dev` runs teipsum-dev (crates/dev) from next to teipsum or from PATH.
if [ ! -x "$(dirname "$teipsum")/teipsum-dev" ] && ! command -v teipsum-dev >/dev/null; then
  say "no teipsum-dev next to $teipsum nor on PATH; build it (cargo build --workspace, or -p teipsum-dev)"
  exit 2
fi

# -- 1. what the test needs ---------------------------------------------------
sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
if [ ! -x "$chromium" ]; then
  say "installing chromium"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))"
  exit 2
fi
# node_modules is current when it was installed from exactly this lock file.
stamp="$tests/node_modules/.installed-from-lock"
lock_sum="$(sha256sum "$tests/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "npm ci"
  (cd "$tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stamp"
fi

# -- 2. the stack ---------------------------------------------------------------
# Two distinct free ports: both stay bound until both are known.
read -r free_https free_http < <(python3 -c '
import socket
held = [socket.socket() for _ in range(2)]
for s in held: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')
https_port="${BROWSER_TEST_HTTPS_PORT:-$free_https}"
http_port="${BROWSER_TEST_HTTP_PORT:-$free_http}"
state="$(mktemp -d -t teipsum-browser-test.XXXXXX)"
mkdir -p "$artifacts"
log="$artifacts/teipsum-dev.log"
# shellcheck source=scripts/dev-stack.sh
. "$root/scripts/dev-stack.sh"
dev_stack_start "$https_port" "$http_port"

# -- 3. the tests ------------------------------------------------------------
say "running the browser tests"
set +e
# The administrator teipsum dev registered, promoted and wrote down.
admin_file="$state/dev/admin.json"
if [ ! -f "$admin_file" ]; then
  say "teipsum dev wrote no $admin_file"
  exit 1
fi
(cd "$tests" && TEIPSUM_URL="https://localhost:$https_port" TEIPSUM_ADMIN_FILE="$admin_file" CHROMIUM="$chromium" TEIPSUM="$teipsum" \
  node --test --test-reporter=spec --test-timeout=600000 storefront.test.js graph.test.js)
status=$?
set -e
if [ "$status" -eq 0 ]; then
  say "passed; screenshots in ${artifacts#"$root"/}/"
else
  say "FAILED (status $status); screenshots and the stack's log in ${artifacts#"$root"/}/"
fi
exit "$status"
