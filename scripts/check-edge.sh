#!/usr/bin/env bash
# The production edge runs: the nginx.conf that NixOS would install for an
# environment, rendered by the real nixpkgs nginx module (nixos-lite
# --render), adapted for Debian's nginx 1.22 / OpenSSL 3.0 by a few named
# steps only, checked with `nginx -t`, then served by Debian's nginx inside a
# private network namespace and requested over HTTPS with curl: every
# security header of the config must be on 200, 404, 413, 429 and 502
# responses, and the errors under /api/ must be the API's JSON errors.
#
#   scripts/check-edge.sh                 # prod and stage
#   scripts/check-edge.sh stage           # some environments (nix/generated/<env>)
#   scripts/check-edge.sh --selftest      # the check catches what it guards against (prod)
#   scripts/check-edge.sh --keep prod     # keep the work directory (rendered and adapted confs, logs)
#
# --selftest runs the unchanged config once (it must pass), then once per
# defect planted in the rendered config (an http-level add_header without
# `always`; a location with an add_header of its own), each of which must
# make the runtime check FAIL with missing headers.
#
# Exit status: 0 all passed; 1 a check failed (or the selftest did not see
# a planted defect); 2 nixos-lite or its nixpkgs files are missing, or usage.
#
# Needs root (ip netns), Debian's nginx (NGINX=/usr/sbin/nginx), iproute2,
# curl, openssl, python3, and nixos-lite (NIXOS_LITE=/path/to/tool, as in
# scripts/check-nixos.sh) with its nixpkgs files. All traffic stays on the
# loopback interface of the namespace teipsum-edge-<pid>, which is removed
# on exit together with every process started in it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
helper="$repo/scripts/edge/edge.py"
upstream_stub="$repo/scripts/edge/upstream.py"

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }

selftest=0
keep=0
envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --selftest) selftest=1 ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "check-edge: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) envs+=("$1") ;;
  esac
  shift
done
if [ ${#envs[@]} -eq 0 ]; then
  if [ "$selftest" = 1 ]; then envs=(prod); else envs=(prod stage); fi
fi
for env in "${envs[@]}"; do
  [ -f "nix/generated/$env/default.nix" ] || { echo "check-edge: no environment $env (nix/generated/$env)" >&2; exit 2; }
done

# ---- tools -------------------------------------------------------------------
nginx="${NGINX:-/usr/sbin/nginx}"
for t in "$nginx" ip curl openssl python3 nix-instantiate; do
  command -v "$t" >/dev/null || { echo "check-edge: $t not found" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "check-edge: needs root (ip netns)" >&2; exit 2; }

tool=""
for candidate in "${NIXOS_LITE:-}" ../shared/tools/nixos-lite /work/shared/tools/nixos-lite; do
  if [ -n "$candidate" ] && [ -x "$candidate/check.sh" ]; then tool="$(cd "$candidate" && pwd)"; break; fi
done
cache="${NIXOS_LITE_NIXPKGS:-${XDG_CACHE_HOME:-$HOME/.cache}/nixos-lite/nixpkgs}"
nginx_module_dir="$cache/nixos/modules/services/web-servers/nginx"
missing_cache() {
  cat >&2 <<EOF

################################################################################
#  check-edge: CANNOT RENDER the production nginx.conf
#  $1
#  nixos-lite renders nginx.conf with the REAL nixpkgs nginx module, which
#  must be in its nixpkgs cache: $cache
#  Populate it as nixos-lite's README says ("Refreshing the nixpkgs files":
#  ${tool:-<nixos-lite>}/refresh.sh, and copies of the files in fetch-list.txt),
#  or point NIXOS_LITE / NIXOS_LITE_NIXPKGS at a tool and tree that have them.
#  Nothing was checked.
################################################################################

EOF
  exit 2
}
[ -n "$tool" ] || missing_cache "nixos-lite not found (NIXOS_LITE, ../shared/tools/nixos-lite, /work/shared/tools/nixos-lite)"
if [ ! -f "$nginx_module_dir/default.nix" ] || [ ! -f "$cache/lib/default.nix" ]; then
  missing_cache "missing $nginx_module_dir/default.nix or $cache/lib/default.nix"
fi

# ---- the work directory, the namespace, and cleaning up ----------------------
work="$(mktemp -d /tmp/teipsum-edge.XXXXXX)"
chmod 755 "$work"   # nginx's workers (nobody) read the storefront below it
ns="teipsum-edge-$$"
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_processes
  if ip netns list 2>/dev/null | grep -qw "$ns"; then
    # Anything still running in our own namespace was started by this script.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
stop_processes() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    # Our own children: gone (or a zombie, reaped by wait) within 5 s, else SIGKILL.
    for _ in $(seq 50); do
      if [ ! -e "/proc/$p" ] || grep -qE '^[0-9]+ \(.*\) Z' "/proc/$p/stat" 2>/dev/null; then break; fi
      sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

# ---- 1. render ---------------------------------------------------------------
# render ENV -> $work/ENV/render/nginx.conf, exactly as the NixOS module writes it.
render() {
  local env="$1" dir="$work/$1/render" rc=0
  mkdir -p "$dir"
  "$tool/check.sh" \
    --extra-module nix/modules/teipsum.nix \
    --extra-module scripts/nixos-lite-packages.nix \
    --render "$dir" "nix/generated/$env" >"$work/$env/nixos-lite.log" 2>&1 || rc=$?
  if [ "$rc" = 2 ]; then
    cat "$work/$env/nixos-lite.log" >&2
    missing_cache "nixos-lite exited 2 (usage error or missing nixpkgs files) for nix/generated/$env"
  fi
  if [ ! -s "$dir/nginx.conf" ]; then
    sed 's/^/  | /' "$work/$env/nixos-lite.log"
    echo "FAIL [$env] nixos-lite rendered no nginx.conf (exit $rc)"
    return 1
  fi
  if [ "$rc" != 0 ]; then
    echo "WARN [$env] nixos-lite's module check FAILED (exit $rc; scripts/check-nixos.sh reports it); checking the rendered nginx.conf anyway:"
    grep -E '^(FAIL|  - )' "$work/$env/nixos-lite.log" | head -20 | sed 's/^/  | /'
  fi
  echo "[$env] rendered nginx.conf: $(wc -l <"$dir/nginx.conf") lines (nixos-lite, real nixpkgs nginx module)"
}

# ---- 2. adapt ----------------------------------------------------------------
# adapt CONF RUN: Debian's nginx 1.22 with OpenSSL 3.0 instead of NixOS's
# nginx 1.28 with a newer OpenSSL, and a temporary directory instead of the
# store and /var. Each step is named, prints every line it changes, and does
# nothing if its pattern does not occur. Nothing else is rewritten: whatever
# else Debian's nginx rejects is a finding (nginx -t fails).
adapt() {
  local conf="$1" run="$2" log="$2/adaptations.jsonl"
  step() { python3 "$helper" sub "$conf" "$log" "$@"; }
  : >"$log"

  # (a) HTTP/2. The NixOS module writes `http2 on;` (a directive since nginx
  # 1.25.1) for nginx >= 1.25.1; 1.22 only knows the `http2` parameter of
  # `listen`, which is what the module writes for older nginx (oldHTTP2).
  if grep -qE '^[[:space:]]*http2 on;' "$conf"; then
    step http2-directive compat '^[ \t]*http2 on;[ \t]*$' ''
    step http2-listen compat '^([ \t]*listen[ \t]+[^ \t;\n]+)[ \t]+ssl\b' '\1 http2 ssl'
  else
    step http2-directive compat '^[ \t]*http2 on;[ \t]*$' ''
  fi

  # (b) TLS groups: adapt_tls_groups below, applied only if nginx -t rejects them.

  # (c) mime.types: services.nginx.defaultMimeTypes is mailcap's file in the
  # store; Debian's nginx ships its own.
  step mime-types path \
    '/nix/store/[a-z0-9]{32}-mailcap-[^/ \t;]*/etc/nginx/mime\.types' '/etc/nginx/mime.types'

  # (d) The nginx package's own conf/fastcgi.conf and conf/uwsgi_params
  # (included by the module's commonHttpConfig): Debian's copies.
  step nginx-package-conf path \
    '/nix/store/[a-z0-9]{32}-nginx-[0-9][^/ \t;]*/conf/(fastcgi\.conf|uwsgi_params)' '/etc/nginx/\1'

  # (e) Files the module writes with pkgs.writeText (the recommended proxy
  # headers): nixos-lite keeps only a fake store path, so the text is taken
  # from the module's source (nix-instantiate evaluates the literal) into
  # RUN/store/NAME.
  local ref name
  mkdir -p "$run/store"
  for ref in $(grep -oE 'include[[:space:]]+/nix/store/[a-z0-9]{32}-[^/[:space:];]+;' "$conf" | awk '{print $2}' | tr -d ';' | sort -u); do
    name="${ref#/nix/store/????????????????????????????????-}"
    python3 "$helper" store-text "$nginx_module_dir" "$name" "$run/store/$name" || return 1
    step "module-text" path "${ref//./\\.}" "$run/store/$name"
  done

  # (f) The storefront: root is pkgs.teipsum-frontend, a store path; here a
  # directory with an index.html and one hashed asset.
  step frontend-root path '^([ \t]*root[ \t]+)/nix/store/[a-z0-9]{32}-[^ \t;]*frontend[^ \t;]*;' "\\1$run/frontend;"

  # (g) ACME: the certificates under /var/lib/acme/<domain>/ (and the HTTP-01
  # challenge root /var/lib/acme/acme-challenge) -> RUN/acme/, with a
  # self-signed certificate for the domain.
  step acme-paths path '/var/lib/acme/' "$run/acme/"

  # (h) Runtime paths: the pid file (/run/nginx is systemd's RuntimeDirectory),
  # an error_log file if the config names one (stderr is kept), the proxy
  # cache (/var/cache/nginx is systemd's CacheDirectory).
  step pid-file path '^([ \t]*pid[ \t]+)/[^ \t;]+;' "\\1$run/nginx.pid;"
  step error-log-file path '^([ \t]*error_log[ \t]+)/[^ \t;]+' "\\1$run/error.log"
  step cache-paths path '/var/cache/nginx/' "$run/cache/"

  # (i) The worker user: NixOS runs nginx as User=nginx from systemd; if the
  # config names a user that Debian does not have, use nobody/nogroup.
  step worker-user compat '^([ \t]*)user[ \t]+[^;\n]*;' '\1user nobody nogroup;'

  # (j) Debian's nginx has compiled-in temp paths (/var/lib/nginx/*) and
  # access log (/var/log/nginx/access.log) where NixOS's has /var/cache/nginx/*
  # and /var/log/nginx/access.log; neither is in the config. Set them to RUN
  # at the start of the http block, so this run touches nothing of the host.
  step debian-compiled-paths add '^(http[ \t]*\{)[ \t]*$' \
    "\\1 client_body_temp_path $run/tmp/body; proxy_temp_path $run/tmp/proxy; fastcgi_temp_path $run/tmp/fastcgi; uwsgi_temp_path $run/tmp/uwsgi; scgi_temp_path $run/tmp/scgi; access_log $run/access.log;"
}

# (b) TLS key exchange groups, applied only when nginx -t rejects them.
# recommendedTlsSettings offers the hybrid post-quantum group X25519MLKEM768
# first (OpenSSL >= 3.5); OpenSSL 3.0 rejects the whole list because of that
# one unknown group. Only that name is dropped. (Today the line is not in
# effect at all: the vhost's own `ssl_conf_command Options KTLS;` keeps the
# http level's ssl_conf_command from being inherited, so nginx -t accepts it.)
adapt_tls_groups() {
  python3 "$helper" sub "$1" "$2/adaptations.jsonl" tls-groups compat \
    '^([ \t]*(?:ssl_conf_command[ \t]+Groups|ssl_ecdh_curve)[ \t]+"?[^;\n]*?)X25519MLKEM768:?' '\1'
}

# Files the adapted config points at.
fixtures() {
  local run="$1" domain="$2" d
  mkdir -p "$run/frontend/assets" "$run/cache" "$run/tmp" "$run/acme/acme-challenge/.well-known/acme-challenge"
  printf '<!doctype html>\n<title>TeIpsum</title>\n<script type="module" src="/assets/app.0123abcd.js"></script>\n' >"$run/frontend/index.html"
  printf 'export const edge = "check-edge";\n' >"$run/frontend/assets/app.0123abcd.js"
  printf 'check-edge-token\n' >"$run/acme/acme-challenge/.well-known/acme-challenge/check-edge-token"
  d="$run/acme/$domain"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain" \
    -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
  cp "$d/cert.pem" "$d/fullchain.pem"
  cp "$d/cert.pem" "$d/chain.pem"
  chmod -R a+rX "$run/frontend" "$run/acme/acme-challenge"
}

# ---- 3 + 4. run and request --------------------------------------------------
# check_env ENV LABEL [MUTATION] -> 0 passed, 1 a check failed.
check_env() {
  local env="$1" label="$2" mutation="${3:-}" run failures=0 rc
  run="$work/$env/$label"
  mkdir -p "$run"
  cp "$work/$env/render/nginx.conf" "$run/rendered.conf"
  if [ -n "$mutation" ]; then python3 "$helper" mutate "$run/rendered.conf" "$mutation" || return 1; fi
  cp "$run/rendered.conf" "$run/nginx.conf"
  local conf="$run/nginx.conf"

  echo "[$env/$label] adaptations for Debian's nginx $("$nginx" -v 2>&1 | sed 's|.*/||') and $(openssl version | awk '{print $1, $2}'):"
  adapt "$conf" "$run" || return 1
  # DOMAIN, HTTPS_LISTEN, HTTP_LISTEN, UPSTREAM_<name>, BODY_LIMIT, SECURITY_HEADERS, ...
  local facts
  facts="$(python3 "$helper" facts "$conf")" || return 1
  eval "$facts"
  # shellcheck disable=SC2153
  fixtures "$run" "$DOMAIN"

  # nginx -t with the real nginx (inside the namespace: nothing outside is bound).
  local tested=0
  nginx_t() { in_ns "$nginx" -t -q -c "$conf" -e "$run/error.log" >"$run/nginx-t.log" 2>&1; }
  if nginx_t; then
    tested=1
    echo "  tls-groups             not needed (nginx -t accepts the rendered groups)"
  elif grep -q 'X25519MLKEM768' "$run/nginx-t.log"; then
    adapt_tls_groups "$conf" "$run"
    if nginx_t; then tested=1; fi
  fi

  echo "[$env/$label] the adaptations left the headers and locations alone:"
  python3 "$helper" invariants "$run/rendered.conf" "$conf" "$run/adaptations.jsonl" || return 1
  python3 "$helper" residue "$conf" "$run" || { echo "FAIL [$env/$label] paths no documented adaptation covers (findings above)"; return 1; }
  python3 "$helper" static "$conf" || failures=$((failures + 1))
  if [ "$tested" != 1 ]; then
    echo "FAIL [$env/$label] nginx -t rejects the adapted config (a finding: no documented adaptation covers it):"
    sed 's/^/  | /' "$run/nginx-t.log" | head -20
    return 1
  fi
  echo "ok   nginx -t"

  # Upstreams: catalog and auth answer (a stub), order stays closed (502).
  local catalog auth order
  catalog="${UPSTREAM_teipsum_catalog:?no upstream teipsum_catalog}"
  auth="${UPSTREAM_teipsum_auth:?no upstream teipsum_auth}"
  order="${UPSTREAM_teipsum_order:?no upstream teipsum_order}"
  # Nothing may run in the namespace yet (a leftover nginx would answer for this one).
  if [ -n "$(ip netns pids "$ns")" ]; then
    echo "FAIL [$env/$label] processes still running in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
    return 1
  fi
  # Started with `ip netns exec` itself (it execs), so that $! is the process.
  ip netns exec "$ns" python3 "$upstream_stub" "${catalog##*:}" "${auth##*:}" >"$run/upstream.log" 2>&1 &
  pids+=($!)
  ip netns exec "$ns" "$nginx" -c "$conf" -e "$run/error.log" >"$run/nginx.log" 2>&1 &
  local nginx_pid=$!
  pids+=("$nginx_pid")
  local up=0
  for _ in $(seq 100); do
    if in_ns curl -sk -o /dev/null --max-time 1 --resolve "$DOMAIN:443:127.0.0.1" "https://$DOMAIN/" \
      && in_ns curl -s -o /dev/null --max-time 1 "http://${catalog}/"; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" = 1 ] && [ "$(cat "$run/nginx.pid" 2>/dev/null)" != "$nginx_pid" ]; then
    echo "FAIL [$env/$label] the nginx answering is not the one started (pid file: $(cat "$run/nginx.pid" 2>/dev/null), started: $nginx_pid)"
    up=0
  fi
  if [ "$up" != 1 ]; then
    echo "FAIL [$env/$label] nginx or the upstream stub did not come up:"
    sed 's/^/  | /' "$run/nginx.log" "$run/error.log" "$run/upstream.log" 2>/dev/null | head -20
    stop_processes
    return 1
  fi
  echo "ok   nginx serving $DOMAIN (listen $HTTPS_LISTEN / $HTTP_LISTEN) in netns $ns; upstream stub on $catalog, $auth; $order closed"
  echo "     security headers required on every HTTPS response: $SECURITY_HEADERS"

  local n=0
  # req CASE WANT [EXTRA-HEADERS...] -- CURL-ARGS...: one HTTPS request, judged.
  req() {
    local case="$1" want="$2" extra=() dump
    shift 2
    while [ "$1" != "--" ]; do extra+=("$1"); shift; done
    shift
    n=$((n + 1)); dump="$run/response-$n.headers"
    # Bodies: response-N.body-#1 for one URL, response-N.body-1..K for a
    # URL glob [1-K] (curl fills in #1), in the order of the header blocks.
    in_ns curl -sk --max-time 10 --resolve "$DOMAIN:443:127.0.0.1" --resolve "$DOMAIN:80:127.0.0.1" \
      -o "$run/response-$n.body-#1" -D "$dump" "$@" >>"$run/curl.log" 2>&1 || true
    python3 "$helper" judge "$conf" "$dump" "$case" "$want" "${extra[@]}" || failures=$((failures + 1))
    printf '%s\t%s\n' "$dump" "$case" >>"$run/cases.tsv"
  }
  local base="https://$DOMAIN"
  req "GET / (storefront)" 200 "Cache-Control=no-cache" -- "$base/"
  req "GET /assets/app.0123abcd.js" 200 "Cache-Control=public, max-age=31536000, immutable" -- "$base/assets/app.0123abcd.js"
  req "GET /products/42 (storefront fallback)" 200 "Cache-Control=no-cache" -- "$base/products/42"
  req "GET /api/products (proxied, cached)" 200 X-Cache-Status -- "$base/api/products"
  req "POST /api/auth/login (proxied)" 200 -- -X POST -H 'Content-Type: application/json' --data '{}' "$base/api/auth/login"
  req "GET /api/nothing" 404 -- "$base/api/nothing"
  req "GET /api/products/42 (proxied)" 200 -- "$base/api/products/42"
  req "GET /api/products-anything (no route)" 404 -- "$base/api/products-anything"
  req "GET /assets/missing.js" 404 -- "$base/assets/missing.js"
  req "GET /api/orders/ (upstream down)" 502 -- "$base/api/orders/"
  head -c $((2 * 1024 * 1024)) /dev/zero >"$run/body-2MiB"
  req "POST 2 MiB /api/orders/ (max $BODY_LIMIT)" 413 -- -X POST -H 'Expect:' -H 'Content-Type: application/json' \
    --data-binary "@$run/body-2MiB" "$base/api/orders/"
  req "60×POST /api/auth/login (rate limit)" 429 -- -X POST -H 'Content-Type: application/json' --data '{}' \
    "$base/api/auth/login?burst=[1-60]"
  if [[ " $HTTPS_LISTEN " == *" [::"* ]]; then
    n=$((n + 1))
    in_ns curl -sk --max-time 10 --resolve "$DOMAIN:443:[::1]" -o /dev/null -D "$run/response-$n.headers" "$base/" >>"$run/curl.log" 2>&1 || true
    python3 "$helper" judge "$conf" "$run/response-$n.headers" "GET / over IPv6 [::1]" 200 || failures=$((failures + 1))
  fi
  # HTTP/2 as the config intends (the http2 adaptation kept it).
  local version
  version="$(in_ns curl -sk --max-time 10 --resolve "$DOMAIN:443:127.0.0.1" -o /dev/null -w '%{http_version}' "$base/" || true)"
  if [ "$version" = 2 ]; then echo "ok   HTTP/2 negotiated over TLS"; else echo "FAIL HTTP version over TLS is '$version', want 2"; failures=$((failures + 1)); fi

  # TLS groups: is the http level's list in effect? Offer only a group it
  # does not name; a handshake means nginx uses OpenSSL's defaults instead.
  # Reported (a warning), not judged.
  local probe="" g
  local groups
  groups="$(python3 "$helper" groups "$conf")"
  if [ -n "$groups" ]; then
    for g in P-521 X448 P-384 P-256 X25519; do grep -qx "$g" <<<"$groups" || { probe="$g"; break; }; done
  fi
  if [ -n "$probe" ]; then
    if in_ns openssl s_client -connect 127.0.0.1:443 -servername "$DOMAIN" -groups "$probe" </dev/null 2>/dev/null \
      | grep -q 'Server Temp Key'; then
      echo "warn TLS: a client offering only $probe (not in the configured groups $(tr '\n' ':' <<<"$groups" | sed 's/:$//')) still gets a handshake: the groups line is not in effect"
    else
      echo "ok   TLS: a client offering only $probe is refused (the configured groups are in effect)"
    fi
  fi
  # The API's error contract (docs/api.md) on the errors nginx itself
  # produces under /api/: a JSON body {"error", "message"} (judged), and
  # X-Request-Id (reported).
  python3 "$helper" api-errors "$run/cases.tsv" || failures=$((failures + 1))

  # Plain HTTP (port 80): reported, not judged on the security headers.
  n=$((n + 1))
  in_ns curl -s --max-time 10 --resolve "$DOMAIN:80:127.0.0.1" -o /dev/null -D "$run/response-$n.headers" \
    "http://$DOMAIN/some/path?q=1" >>"$run/curl.log" 2>&1 || true
  python3 "$helper" report "$run/response-$n.headers" "HTTP GET /some/path?q=1 (port 80)"
  if grep -qiE "^location: https://$DOMAIN/some/path\?q=1"$'\r'"?$" "$run/response-$n.headers" \
    && grep -qE '^HTTP/[0-9.]+ 301' "$run/response-$n.headers"; then
    echo "ok   port 80 redirects to https://$DOMAIN/some/path?q=1 (301)"
  else
    echo "FAIL port 80 does not redirect with 301 to https://$DOMAIN/some/path?q=1"; failures=$((failures + 1))
  fi
  n=$((n + 1))
  local token
  token="$(in_ns curl -s --max-time 10 --resolve "$DOMAIN:80:127.0.0.1" -D "$run/response-$n.headers" \
    "http://$DOMAIN/.well-known/acme-challenge/check-edge-token" 2>>"$run/curl.log" || true)"
  python3 "$helper" report "$run/response-$n.headers" "HTTP GET /.well-known/acme-challenge/"
  if [ "$token" = "check-edge-token" ]; then
    echo "ok   port 80 serves the ACME HTTP-01 challenge without redirecting"
  else
    echo "FAIL port 80 does not serve the ACME challenge file"; failures=$((failures + 1))
  fi

  stop_processes
  if grep -E '\[(emerg|alert|crit)\]' "$run/error.log" "$run/nginx.log" 2>/dev/null | head -5 | grep -q .; then
    echo "FAIL [$env/$label] nginx logged errors:"; grep -hE '\[(emerg|alert|crit)\]' "$run/error.log" "$run/nginx.log" | head -5 | sed 's/^/  | /'
    failures=$((failures + 1))
  fi
  if [ "$failures" = 0 ]; then echo "PASS [$env/$label]"; return 0; fi
  echo "FAIL [$env/$label]: $failures check(s) failed"
  return 1
}

# ---- main ----------------------------------------------------------------------
status=0
for env in "${envs[@]}"; do
  start=$SECONDS
  mkdir -p "$work/$env"
  echo
  echo "== $env"
  if ! render "$env"; then status=1; continue; fi
  if [ "$selftest" = 0 ]; then
    check_env "$env" edge || status=1
  else
    # 5. The check must fail on the defects it guards against.
    if ! check_env "$env" baseline >"$work/$env/baseline.out" 2>&1; then
      cat "$work/$env/baseline.out"
      echo "SELFTEST FAIL [$env] the unchanged config does not pass, so the defects prove nothing"
      status=1; continue
    fi
    echo "selftest [$env] unchanged config: PASS"
    for defect in drop-always location-header; do
      rc=0
      check_env "$env" "$defect" "$defect" >"$work/$env/$defect.out" 2>&1 || rc=$?
      grep -E 'selftest defect|^FAIL .*MISSING|^  static' "$work/$env/$defect.out" | sed 's/^/  | /'
      if [ "$rc" = 1 ] && grep -qE '^FAIL .*MISSING' "$work/$env/$defect.out"; then
        echo "selftest [$env] $defect: the check FAILED as it must ($(grep -cE '^FAIL .*MISSING' "$work/$env/$defect.out") responses without a security header)"
      else
        cat "$work/$env/$defect.out"
        echo "SELFTEST FAIL [$env] $defect: the check did not catch the planted defect"
        status=1
      fi
    done
  fi
  echo "[$env] $((SECONDS - start)) s"
done
exit "$status"
