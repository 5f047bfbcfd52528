# shellcheck shell=bash
# Sourced, not run, by the scripts that drive `teipsum dev` (browser-test.sh,
# api-fuzz.sh): start the stack, wait until it is ready, and stop it — with the
# PostgreSQL server it may leave behind — whatever happens to the caller.
#
# The caller sets: root (the clone), teipsum (the binary), state (a fresh
# directory, removed at exit), log (the stack's log file) and a say()
# function; then calls `dev_stack_start <https-port> <http-port>`, which sets
# dev_pid and returns once the stack is ready (or exits non-zero).

dev_pid=""

# interrupt <pid> <seconds>: SIGINT, then wait; returns 1 if it still runs.
interrupt() {
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 1 "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 1
  done
  ! kill -0 "$1" 2>/dev/null
}

dev_stack_stop() {
  local status=$?
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    say "stopping teipsum dev"
    if ! interrupt "$dev_pid" 60; then
      say "teipsum dev did not stop within 60 s; killing its process group"
      kill -KILL -- "-$dev_pid" 2>/dev/null || true
    fi
    wait "$dev_pid" 2>/dev/null || true
  fi
  # If teipsum dev had to be killed, its PostgreSQL server (running as the
  # postgres user) may be left behind. Stop it by the pid it wrote.
  local pidfile="$state/dev/postgres/data/postmaster.pid"
  if [ -f "$pidfile" ]; then
    local pg_pid
    pg_pid="$(head -n 1 "$pidfile")"
    if [ -n "$pg_pid" ] && kill -0 "$pg_pid" 2>/dev/null; then
      say "stopping the PostgreSQL server the stack left running (pid $pg_pid)"
      interrupt "$pg_pid" 15 || kill -KILL "$pg_pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$state"
  exit "$status"
}

# dev_stack_start <https-port> <http-port>
dev_stack_start() {
  # PostgreSQL may run as another user; it must be able to reach its directory.
  chmod 0755 "$state"
  trap dev_stack_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "starting teipsum dev on https://localhost:$1 (log: ${log#"$root"/})"
  # A process group of its own, so that a stuck stack can be stopped as a whole.
  setsid "$teipsum" -f "$root/config.ncl" dev \
    --https-port "$1" --http-port "$2" --state-dir "$state/dev" --free-ports \
    >"$log" 2>&1 </dev/null &
  dev_pid=$!
  for _ in $(seq 1 180); do
    if grep -q 'is running:' "$log"; then return 0; fi
    if ! kill -0 "$dev_pid" 2>/dev/null; then
      say "teipsum dev stopped before it was ready:"
      tail -n 40 "$log" >&2
      exit 1
    fi
    sleep 1
  done
  say "teipsum dev was not ready after 180 s:"
  tail -n 40 "$log" >&2
  exit 1
}
