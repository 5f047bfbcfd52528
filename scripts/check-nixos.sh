#!/usr/bin/env bash
# Check what `nixos-rebuild`, `nix build` and `nix flake check` would see,
# against the real option declarations and module code of the pinned NixOS
# release, with nixos-lite (../shared/tools/nixos-lite):
#   1. the generated modules (prod, stage, a KRaft fixture) and the
#      hand-written ones: option names, types, removed options, assertions,
#      the units and nginx.conf they render;
#   2. every rendered TeIpsum unit scores ≤ 2.0 in `systemd-analyze security`;
#   3. every flake output evaluates (packages, nixosConfigurations, checks,
#      devShells, formatter), the locked crates build with the pinned rustc,
#      and a host without an operator SSH key does not;
#   4. the production edge: the rendered nginx.conf runs in Debian's nginx
#      (scripts/check-edge.sh).
# nixos-lite reads a partial nixpkgs tree from ~/.cache/nixos-lite/nixpkgs,
# which only a session with the search tool can populate (its README,
# "Refreshing the nixpkgs files"). Without it this says so loudly and stops
# with status 0 (CI=true: status 0 too, but the banner is in the log); the
# option allow-list test (crates/nixgen/tests) still guards option names.
set -euo pipefail
cd "$(dirname "$0")/.."
teipsum="${TEIPSUM:-$CARGO_TARGET_DIR/debug/teipsum}"

tool=""
for candidate in "${NIXOS_LITE:-}" ../shared/tools/nixos-lite /work/shared/tools/nixos-lite; do
  if [ -n "$candidate" ] && [ -x "$candidate/check.sh" ]; then tool="$(cd "$candidate" && pwd)"; break; fi
done
cache="${NIXOS_LITE_NIXPKGS:-${XDG_CACHE_HOME:-$HOME/.cache}/nixos-lite/nixpkgs}"
if [ -z "$tool" ] || [ ! -f "$cache/nixos/modules/services/databases/postgresql.nix" ] || [ ! -f "$cache/lib/default.nix" ]; then
  cat >&2 <<EOF
################################################################################
# nixos-lite is NOT available on this machine: the NixOS modules, the flake  #
# outputs and the production edge were NOT checked.                          #
#   tool:           ${tool:-missing (../shared/tools/nixos-lite)}
#   nixpkgs files:  $cache
# Populate the cache as its README says ("Refreshing the nixpkgs files")     #
# before resolving an issue that touches Nix.                                #
################################################################################
EOF
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
extra=(--extra-module nix/modules/teipsum.nix --extra-module scripts/nixos-lite-packages.nix)

echo "-- modules"
"$teipsum" -f crates/nixgen/tests/fixtures/kraft.ncl compile --out "$work/kraft" >/dev/null
for dir in nix/generated/prod nix/generated/stage "$work/kraft/prod" "$work/kraft/stage"; do
  name="$(basename "$(dirname "$dir")")-$(basename "$dir")"
  "$tool/check.sh" "${extra[@]}" --render "$work/render/$name" "$dir"
done
"$tool/check.sh" "${extra[@]}" --render "$work/render/jwt-key" nix/modules/jwt-key.nix

echo "-- the rendered Prometheus and Alertmanager configurations load (promtool, amtool)"
for render in "$work/render"/*-prod "$work/render"/*-stage; do
  promtool check config --syntax-only "$render/prometheus/prometheus.yml" >/dev/null \
    || { promtool check config --syntax-only "$render/prometheus/prometheus.yml"; exit 1; }
  promtool check rules "$render"/prometheus/rules/*.yml >/dev/null \
    || { promtool check rules "$render"/prometheus/rules/*.yml; exit 1; }
  # Debian's amtool (0.25) predates the webhook's `url_file` (0.26); read e-mail configurations only.
  if ! grep -q url_file "$render/alertmanager/alertmanager.yml"; then
    amtool check-config "$render/alertmanager/alertmanager.yml" >/dev/null \
      || { amtool check-config "$render/alertmanager/alertmanager.yml"; exit 1; }
  fi
done
echo "  prometheus.yml and the rules of every environment load; so does kraft-stage's e-mail alertmanager.yml"
echo "-- units that nixpkgs leaves without Restart= get one"
for render in "$work/render/generated-prod" "$work/render/generated-stage" "$work/render/kraft-prod"; do
  for unit in apache-kafka teipsum-topics acme-order-renew-*; do
    file="$(ls "$render"/units/$unit.service)"
    grep -qx 'Restart=on-failure' "$file" || { echo "no Restart=on-failure in $file"; exit 1; }
  done
  if [ -e "$render/units/zookeeper.service" ]; then
    grep -qx 'Restart=on-failure' "$render/units/zookeeper.service" || { echo "no Restart= for ZooKeeper in $render"; exit 1; }
  fi
  grep -q '^After=.*nginx.service' "$render"/units/acme-order-renew-*.service \
    || { echo "the first certificate order is not ordered after nginx in $render"; exit 1; }
done
echo "  apache-kafka, zookeeper, teipsum-topics, acme-order-renew-<domain>: Restart=on-failure; the order runs after nginx"

echo "-- systemd-analyze security of the rendered TeIpsum units (at most 2.0)"
worst=0
for unit in "$work"/render/*/units/teipsum-*.service; do
  # Offline scoring reads the unit file alone; the placeholder store paths do not matter.
  score="$(systemd-analyze security --offline=true --no-pager "$unit" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')"
  [ -n "$score" ] || { echo "cannot score $unit"; exit 1; }
  printf '  %-45s %s\n' "$(basename "$(dirname "$(dirname "$unit")")")/$(basename "$unit")" "$score"
  if awk -v s="$score" 'BEGIN { exit !(s > 2.0) }'; then worst=1; fi
done
[ "$worst" = 0 ] || { echo "a unit's exposure is above 2.0"; exit 1; }

echo "-- flake outputs"
read -r _ _ _ rustc < <(grep '^nixpkgs ' nix/toolchain)
flake_inputs=(--rustc "$rustc" --input nixpkgs-kafka=:nixpkgs)
# The flake as committed: every output but the hosts evaluates; the hosts
# fail, naming the missing operator key (password login is off).
mkdir -p "$work/flake"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$work/flake"
if grep -qv '^#' nix/hosts/operators.pub; then
  echo "nix/hosts/operators.pub has keys: the keyless case is checked on a copy without them"
  grep '^#' nix/hosts/operators.pub >"$work/flake/nix/hosts/operators.pub" || true
fi
(cd "$work/flake" && git init -q && git add -A)
if "$tool/check-flake.sh" "${flake_inputs[@]}" "$work/flake" >"$work/keyless.log" 2>&1; then
  cat "$work/keyless.log"; echo "a host without an operator SSH key evaluated"; exit 1
fi
for host in prod stage; do
  grep -q "FAIL  nixosConfigurations.$host" "$work/keyless.log" \
    && grep -q "no operator SSH key" "$work/keyless.log" \
    || { cat "$work/keyless.log"; echo "nixosConfigurations.$host did not fail on the missing key"; exit 1; }
done
if grep '^  FAIL  ' "$work/keyless.log" | grep -vq 'nixosConfigurations'; then
  cat "$work/keyless.log"; echo "an output other than the hosts failed"; exit 1
fi
echo "  without an operator key: the hosts are refused (no operator SSH key), every other output evaluates"
# With an operator key, as after README "Deploying to a new server", step 2.
ssh-keygen -q -t ed25519 -N '' -C operator@example.org -f "$work/operator"
cat "$work/operator.pub" >>"$work/flake/nix/hosts/operators.pub"
(cd "$work/flake" && git add -A)
"$tool/check-flake.sh" "${flake_inputs[@]}" "$work/flake"

echo "-- the production edge in Debian's nginx"
NIXOS_LITE="$tool" scripts/check-edge.sh
# ...and the edge check fails on what it guards against (a header without
# `always`, a location that drops the inherited headers).
NIXOS_LITE="$tool" scripts/check-edge.sh --selftest
