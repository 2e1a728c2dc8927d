#!/usr/bin/env bash
# `make bench`: what AWS would bill per event, current-usage latency at 100 and 100,000 events,
# and a month-start billing run (invoices per minute, AWS requests per invoice), measured
# through the local stack (the Lambdas' handlers against the emulator).
#
# Starts its own emulator on BENCH_EMULATOR_PORT (default 4598) unless AWS_ENDPOINT_URL is
# set, builds the benchmark in release mode, runs it and stops what it started. Sizes come
# from BENCH_SINGLE, BENCH_BATCHED and BENCH_LARGE (see shared/local-runner/src/bin/bench.rs).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

.ci/bootstrap.sh run

export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

emulator_port=""
stop_emulator() {
  if [[ -n "$emulator_port" ]]; then
    .ci/emulator.sh stop "$emulator_port"
  fi
}
trap stop_emulator EXIT
trap 'exit 130' INT

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  port="${BENCH_EMULATOR_PORT:-4598}"
  status=0
  .ci/emulator.sh start "$port" || status=$?
  case "$status" in
    0) emulator_port="$port" ;;
    10) ;;
    *) exit "$status" ;;
  esac
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
fi

# One build of the binaries and the examples together: one feature resolution, so the SDK
# crates are compiled once for both.
cargo build --release --workspace --bins --examples
release="${CARGO_TARGET_DIR:-$root/target}/release"
"$release/bench"
printf '\n'
# Month start: BENCH_SUBSCRIPTIONS subscriptions billed by one clock run (see
# functions/invoice/examples/bench_month_start.rs).
"$release/examples/bench_month_start"
