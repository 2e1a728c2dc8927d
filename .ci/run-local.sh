#!/usr/bin/env bash
# `make run`: the whole system on this machine, no AWS account and no Docker needed.
#
# Uses the AWS endpoint in AWS_ENDPOINT_URL when the user set one (LocalStack, say); otherwise
# starts (or reuses) moto on 127.0.0.1:4566 (EMULATOR_PORT to change it). Then builds and runs the local runner in the
# foreground: it creates the tables, queues and bus, an organization (from LAGO_API_KEY when
# set), and serves the API on LOCAL_HTTP_ADDR (default 127.0.0.1:3000), printing URL and key.
# Ctrl-C stops the runner, and the emulator too if this script started it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

.ci/bootstrap.sh run

# Emulators accept any credentials, but the SDK refuses to sign without some.
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

emulator_port=""
stop_emulator() {
  if [[ -n "$emulator_port" ]]; then
    .ci/emulator.sh stop "$emulator_port"
    emulator_port=""
  fi
}
trap stop_emulator EXIT
# Turn Ctrl-C and kill into a normal exit, so the EXIT trap runs once the runner has stopped.
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  echo "run: using the AWS endpoint AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
else
  port="${EMULATOR_PORT:-4566}"
  status=0
  .ci/emulator.sh start "$port" || status=$?
  case "$status" in
    0) emulator_port="$port" ;; # ours: stopped on exit
    10) ;;                      # reused: its owner stops it
    *) exit "$status" ;;
  esac
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
fi

cargo build -p local-runner
runner="${CARGO_TARGET_DIR:-$root/target}/debug/local-runner"
# Not `exec`: this shell stays to stop the emulator when the runner ends.
"$runner" serve
