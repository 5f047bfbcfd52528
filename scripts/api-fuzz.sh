#!/usr/bin/env bash
# Schemathesis against `teipsum dev`, reading the OpenAPI document the edge
# serves (/api/openapi.json, docs/openapi.json):
#
#   cargo build --workspace && scripts/api-fuzz.sh
#
# 1. starts `teipsum dev` with a temporary state directory, nginx on free
#    ports, and waits until it says it is running;
# 2. checks that /api/openapi.json through the edge is docs/openapi.json and
#    a valid OpenAPI 3.1 document (openapi-spec-validator);
# 3. logs in as the administrator teipsum dev created (its admin.json) and
#    as a customer it registers;
# 4. runs schemathesis (every phase: examples, coverage, fuzzing, stateful)
#    once with each token, with the checks not_a_server_error,
#    status_code_conformance, content_type_conformance,
#    response_schema_conformance and negative_data_rejection, bounded in
#    time (API_FUZZ_SECONDS per token, 75 by default) and with a fixed seed
#    (API_FUZZ_SEED) so that a failure can be replayed;
# 5. stops the stack whatever happens, and exits with schemathesis' status.
#
# TEIPSUM: the teipsum binary (default: $CARGO_TARGET_DIR/debug/teipsum).
# SCHEMATHESIS_VENV: where scripts/setup.sh installed schemathesis
# (default ~/.cache/teipsum/schemathesis). Reports (JUnit, the failures as
# pytest files) go to target's api-fuzz/ directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

target="${CARGO_TARGET_DIR:-$HOME/.cache/teipsum/target}"
teipsum="${TEIPSUM:-$target/debug/teipsum}"
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/teipsum/schemathesis}"
seconds="${API_FUZZ_SECONDS:-75}"
seed="${API_FUZZ_SEED:-18}"
reports="${API_FUZZ_REPORTS:-$target/api-fuzz}"

say() { printf 'api-fuzz: %s\n' "$*" >&2; }

if [ ! -x "$teipsum" ]; then
  say "no teipsum binary at $teipsum; build the workspace first (cargo build --workspace) or set TEIPSUM"
  exit 2
fi
if [ ! -x "$venv/bin/st" ]; then
  say "no schemathesis in $venv; run scripts/setup.sh"
  exit 2
fi

# -- 1. the stack ---------------------------------------------------------------
# Two distinct free ports: both stay bound until both are known.
read -r https_port http_port < <("$venv/bin/python" -c '
import socket
held = [socket.socket() for _ in range(2)]
for s in held: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')
state="$(mktemp -d -t teipsum-api-fuzz.XXXXXX)"
mkdir -p "$reports"
log="$reports/teipsum-dev.log"
# shellcheck source=scripts/dev-stack.sh
. "$root/scripts/dev-stack.sh"
dev_stack_start "$https_port" "$http_port"
base="https://localhost:$https_port"
ca="$state/dev/tls/ca.pem"
curl_() { curl --silent --show-error --cacert "$ca" "$@"; }

# -- 2. the document the edge serves ----------------------------------------
served="$state/openapi.json"
curl_ --fail --output "$served" --write-out '%{content_type}\n' "$base/api/openapi.json" >"$state/content-type"
if ! grep -q '^application/json' "$state/content-type"; then
  say "/api/openapi.json is served as $(cat "$state/content-type"), not application/json"
  exit 1
fi
if ! cmp -s "$served" docs/openapi.json; then
  say "/api/openapi.json through the edge is not docs/openapi.json"
  exit 1
fi
"$venv/bin/python" -c '
import json, sys
from openapi_spec_validator import validate
document = json.load(open(sys.argv[1]))
assert document["openapi"].startswith("3.1."), document["openapi"]
validate(document)
print("api-fuzz: /api/openapi.json is a valid OpenAPI %s document with %d paths" % (document["openapi"], len(document["paths"])), file=sys.stderr)
' "$served"

# -- 3. tokens --------------------------------------------------------------
token() { # token <email> <password>
  curl_ --fail -H 'content-type: application/json' \
    --data "$(jq -n --arg e "$1" --arg p "$2" '{email: $e, password: $p}')" \
    "$base/api/auth/login" | jq -r .access_token
}
admin_file="$state/dev/admin.json"
admin="$(token "$(jq -r .email "$admin_file")" "$(jq -r .password "$admin_file")")"
customer_password="$(head -c 18 /dev/urandom | base64)"
curl_ --fail --output /dev/null -H 'content-type: application/json' \
  --data "$(jq -n --arg p "$customer_password" '{email: "fuzz@teipsum.test", password: $p, display_name: "Fuzz"}')" \
  "$base/api/auth/register"
customer="$(token fuzz@teipsum.test "$customer_password")"

# -- 4. schemathesis ------------------------------------------------------------
# From the reports' directory: schemathesis keeps its cache (.schemathesis/) in
# the working directory, and the clone is no place for it.
cd "$reports"
status=0
# One worker: with two, hypothesis parses lambdas' source in two threads at
# once and Debian 12's Python 3.11.2 fails with "SystemError: AST constructor
# recursion depth mismatch" (a race in CPython's ast module, fixed in later
# releases), reported as a Runtime Error of an operation (seen in CI, 2026-12-02).
for who in admin customer; do
  say "schemathesis as the $who, for $seconds s"
  set +e
  "$venv/bin/st" --config-file "$root/scripts/schemathesis.toml" run "$base/api/openapi.json" \
    --tls-verify "$ca" \
    --header "Authorization: Bearer ${!who}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
    --phases examples,coverage,fuzzing,stateful \
    --max-time "$seconds" \
    --max-examples 25 \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit,pytest --report-dir "$reports/$who" \
    --generation-database none \
    --no-color
  run=$?
  set -e
  [ "$run" -eq 0 ] || status="$run"
done
if [ "$status" -eq 0 ]; then
  say "passed"
else
  say "FAILED (status $status); reports in $reports, the stack's log in $log"
fi
exit "$status"
