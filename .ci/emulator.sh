#!/usr/bin/env bash
# Starts or stops the AWS emulator of the local stack (moto's server) on 127.0.0.1:PORT.
#
#   .ci/emulator.sh start PORT   reuse whatever already answers on PORT (LocalStack, or a moto the
#                                user started), else start moto in the background and wait for it
#   .ci/emulator.sh stop PORT    stop the moto that `start` started, and nothing else
#
# `start` exits 0 when it started moto, 10 when it reused a server that was already there, and
# 1 when it failed. A caller stops the emulator at the end only after a 0: whoever started a
# reused server (another `make run`, the user) keeps it. The pid file .local/emulator-PORT.pid
# is written only when this script starts the server, so `stop` never kills anything else.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop PORT" >&2
  exit 2
}
[[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || usage
command="$1"
port="$2"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

url="http://127.0.0.1:$port"
pid_file=".local/emulator-$port.pid"
log_file=".local/emulator-$port.log"

# Any HTTP answer counts (moto returns 404 on /): we only ask whether a server listens.
answers() { curl --silent --output /dev/null --max-time 1 "$url/"; }

# True when PID is alive and is a moto server, so a recycled pid is never killed.
is_our_moto() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server
}

start() {
  if answers; then
    echo "emulator: reusing the server already answering on $url"
    return 10
  fi
  # A pid file whose server no longer answers is left over from a crash.
  rm -f "$pid_file"
  if [[ ! -x .venv/bin/moto_server ]]; then
    echo "emulator: .venv/bin/moto_server is missing; run .ci/bootstrap.sh run first" >&2
    return 1
  fi
  mkdir -p .local
  # Detached from our stdin/stdout so that callers capturing our output do not wait on moto.
  # A background job of a non-interactive shell ignores SIGINT: Ctrl-C in `make run` reaches
  # the runner, and the caller's trap stops moto through `stop`.
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" </dev/null >"$log_file" 2>&1 &
  local pid=$!
  printf '%s\n' "$pid" >"$pid_file"

  # Readiness poll: up to 30 s in 0.1 s steps, giving up early if moto died.
  local attempt
  for ((attempt = 0; attempt < 300; attempt++)); do
    if answers; then
      echo "emulator: moto started on $url (pid $pid, log $log_file)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "emulator: moto exited before answering on $url; its log:" >&2
      tail -n 20 "$log_file" >&2 || true
      rm -f "$pid_file"
      return 1
    fi
    sleep 0.1
  done
  echo "emulator: moto did not answer on $url within 30 s; stopping it" >&2
  kill "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  return 1
}

stop() {
  if [[ ! -f "$pid_file" ]]; then
    echo "emulator: nothing started by this script on port $port; leaving it alone"
    return 0
  fi
  local pid
  pid="$(cat "$pid_file")"
  if is_our_moto "$pid"; then
    kill "$pid"
    # Wait (bounded) for the port to be free, so an immediate restart does not see it as taken.
    local attempt
    for ((attempt = 0; attempt < 100; attempt++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "emulator: moto (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "emulator: stopped moto on $url (pid $pid)"
  fi
  rm -f "$pid_file"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
