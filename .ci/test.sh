#!/usr/bin/env bash
# `make test` (and `make lint`, `make sam-build`): every check the project has, in one run.
#
#   .ci/test.sh [all|lint|sam-build]
#
# all: bootstrap; lint (cfn-lint, sam validate --lint, rustfmt, clippy); sam build for arm64;
# the AWS emulator on 127.0.0.1:4599 (reused if something answers there) for the Rust tests with
# nextest; then a fresh emulator on 127.0.0.1:4597 for the local runner on 127.0.0.1:3099 and
# Lago's Python and JavaScript clients against it (the clients' tests neither wait on the Rust
# tests' leftovers nor add to them). A failed client stage prints the emulator's and runner's
# state and the tail of their logs.
# Every stage runs even when an earlier one failed, so one run reports everything; then the
# runner and the emulator this script started are stopped, and the last line sums all JUnit
# reports: `tests: N passed, N failed`. Exit status is non-zero when any stage failed or no
# test ran.
set -euo pipefail

what="${1:-all}"
case "$what" in
  all | lint | sam-build) ;;
  *)
    echo "usage: $0 [all|lint|sam-build]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export SAM_CLI_TELEMETRY=0
# sam finds cargo-lambda on PATH, and cargo-lambda finds zig (the arm64 linker) there too.
export PATH="$root/.venv/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
results="$root/.local/test-results"

emulator_port=4599
client_emulator_port=4597
runner_addr=127.0.0.1:3099
runner_log="$root/.local/runner-3099.log"
runner_pid=""
emulator_started=false
client_emulator_started=false

failed_stages=()

# Runs one stage, timing it and recording its failure without stopping the run. Stage functions
# return a status explicitly (errexit does not apply inside a function called from `if`).
stage() {
  local name="$1"
  shift
  local started=$SECONDS
  printf '\n==> %s\n' "$name"
  if "$@"; then
    printf '<== %s: ok (%d s)\n' "$name" $((SECONDS - started))
  else
    printf '<== %s: FAILED (%d s)\n' "$name" $((SECONDS - started))
    failed_stages+=("$name")
  fi
}

lint() {
  local status=0
  cfn-lint template.yaml || status=1
  AWS_DEFAULT_REGION=us-east-1 sam validate --lint --template template.yaml || status=1
  cargo fmt --all -- --check || status=1
  cargo clippy --workspace --all-targets -- -D warnings || status=1
  return "$status"
}

sam_build() {
  sam build --build-in-source --template template.yaml --build-dir .aws-sam/build
}

start_emulator() {
  local status=0
  .ci/emulator.sh start "$emulator_port" || status=$?
  case "$status" in
    0) emulator_started=true ;; # ours: stopped at the end
    10) ;;                      # reused: its owner stops it
    *) return 1 ;;
  esac
}

start_client_emulator() {
  # The Rust tests' emulator is no longer needed: stopping it (when ours) frees its memory.
  if [[ "$emulator_started" == true ]]; then
    .ci/emulator.sh stop "$emulator_port" || true
    emulator_started=false
  fi
  local status=0
  .ci/emulator.sh start "$client_emulator_port" || status=$?
  case "$status" in
    0) client_emulator_started=true ;;
    10) ;;
    *) return 1 ;;
  esac
}

# What a failed client stage needs to be understood from a CI log: is the emulator still up,
# what did it and the runner last say.
report_stack() {
  local url="http://127.0.0.1:$client_emulator_port/"
  if curl --silent --output /dev/null --max-time 2 "$url"; then
    echo "stack report: the emulator on $url answers"
  else
    echo "stack report: the emulator on $url does NOT answer"
  fi
  local log="$root/.local/emulator-$client_emulator_port.log"
  if [[ -f "$log" ]]; then
    echo "stack report: last lines of $log that are not request lines:"
    grep -v -E '" [0-9]{3} -?$|" [0-9]{3} [0-9-]+$' "$log" | tail -n 30 || true
  fi
  if [[ -f "$runner_log" ]]; then
    echo "stack report: last lines of $runner_log:"
    tail -n 30 "$runner_log" || true
  fi
  if command -v free >/dev/null; then
    echo "stack report: memory $(free -m | awk 'NR==2{print $3 " MiB used of " $2}')"
  fi
}

rust_tests() {
  # nextest's store is target/nextest under the workspace root, whatever CARGO_TARGET_DIR says.
  local report="$root/target/nextest/ci/junit.xml"
  # A report left by an earlier run must not stand in for this one.
  rm -f "$report"
  local status=0
  cargo nextest run --workspace --no-fail-fast --profile ci || status=$?
  if [[ -f "$report" ]]; then
    cp "$report" "$results/nextest.xml"
  fi
  return "$status"
}

start_runner() {
  if curl --silent --output /dev/null --max-time 1 "http://$runner_addr/"; then
    echo "something already listens on $runner_addr; stop it so the tests reach this build" >&2
    return 1
  fi
  # The same package and target selection as the test build (every member, with dev-deps),
  # so cargo unifies features alike and only links the binaries: `cargo build -p local-runner`
  # would resolve features differently and compile the AWS SDKs a second time.
  cargo build --workspace --bins --tests || return 1
  mkdir -p "$(dirname "$runner_log")"
  LOCAL_HTTP_ADDR="$runner_addr" "$runner_bin" serve </dev/null >"$runner_log" 2>&1 &
  runner_pid=$!
  # Readiness poll: provisioning the tables takes a moment; 60 s at most in 0.1 s steps.
  local attempt
  for ((attempt = 0; attempt < 600; attempt++)); do
    if [[ "$(curl --silent --output /dev/null --max-time 1 --write-out '%{http_code}' \
      "http://$runner_addr/health")" == 200 ]]; then
      echo "local runner ready on http://$runner_addr (pid $runner_pid, log $runner_log)"
      return 0
    fi
    if ! kill -0 "$runner_pid" 2>/dev/null; then
      echo "the local runner exited before answering; its log:" >&2
      tail -n 40 "$runner_log" >&2 || true
      runner_pid=""
      return 1
    fi
    sleep 0.1
  done
  echo "the local runner did not answer GET /health with 200 within 60 s; its log:" >&2
  tail -n 40 "$runner_log" >&2 || true
  return 1
}

stop_runner() {
  [[ -n "$runner_pid" ]] || return 0
  kill "$runner_pid" 2>/dev/null || true
  local attempt
  for ((attempt = 0; attempt < 100; attempt++)); do
    kill -0 "$runner_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$runner_pid" 2>/dev/null || true
  wait "$runner_pid" 2>/dev/null || true
  runner_pid=""
}

stop_everything() {
  stop_runner
  if [[ "$emulator_started" == true ]]; then
    .ci/emulator.sh stop "$emulator_port" || true
    emulator_started=false
  fi
  if [[ "$client_emulator_started" == true ]]; then
    .ci/emulator.sh stop "$client_emulator_port" || true
    client_emulator_started=false
  fi
}

python_client_tests() {
  local dir=tests/clients/python
  if [[ -z "$(find "$dir" -name 'test_*.py' -o -name '*_test.py' 2>/dev/null | head -n 1)" ]]; then
    echo "no tests in $dir yet; skipped"
    return 0
  fi
  runner_is_up || return 1
  # Exit status 5 (test files, but nothing collected) fails like any other non-zero status.
  local status=0
  .venv/bin/python -m pytest "$dir" -ra -p no:cacheprovider --junitxml="$results/pytest.xml" ||
    status=$?
  ((status == 0)) || report_stack
  return "$status"
}

js_client_tests() {
  local files=()
  shopt -s nullglob
  files=(tests/clients/js/*.test.mjs)
  shopt -u nullglob
  if ((${#files[@]} == 0)); then
    echo "no tests in tests/clients/js yet; skipped"
    return 0
  fi
  runner_is_up || return 1
  node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=junit --test-reporter-destination="$results/node.xml" \
    "${files[@]}" || {
    local status=$?
    report_stack
    return "$status"
  }
}

runner_is_up() {
  if [[ -z "$runner_pid" ]]; then
    echo "the client tests need the local runner, which did not start (see above)" >&2
    return 1
  fi
}

.ci/bootstrap.sh test

if [[ "$what" == lint ]]; then
  stage lint lint
elif [[ "$what" == sam-build ]]; then
  stage "sam build" sam_build
else
  trap stop_everything EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  rm -rf "$results"
  mkdir -p "$results"

  stage lint lint
  stage "sam build" sam_build

  # The tests talk to the emulator only, whatever credentials the user has in the environment.
  export AWS_ENDPOINT_URL="http://127.0.0.1:$emulator_port"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_SESSION_TOKEN AWS_PROFILE
  # A fresh prefix per run: resources left by an earlier run, or a concurrent one, never
  # collide with this run's.
  RESOURCE_PREFIX="test-$(cut -c1-8 /proc/sys/kernel/random/uuid)"
  LAGO_API_KEY="$(cat /proc/sys/kernel/random/uuid)"
  export RESOURCE_PREFIX LAGO_API_KEY
  export LAGO_API_URL="http://$runner_addr"
  runner_bin="$target_dir/debug/local-runner"
  export LOCAL_RUNNER_BIN="$runner_bin"
  echo "test resources: RESOURCE_PREFIX=$RESOURCE_PREFIX, AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

  stage emulator start_emulator
  stage "rust tests" rust_tests
  stage "client emulator" start_client_emulator
  export AWS_ENDPOINT_URL="http://127.0.0.1:$client_emulator_port"
  stage "local runner" start_runner
  stage "python client tests" python_client_tests
  stage "javascript client tests" js_client_tests

  printf '\n'
  stop_everything
fi

for name in "${failed_stages[@]}"; do
  echo "failed stage: $name"
done

if [[ "$what" != all ]]; then
  exit $((${#failed_stages[@]} > 0))
fi

reports=()
shopt -s nullglob
reports=("$results"/*.xml)
shopt -u nullglob
summary_status=0
.venv/bin/python .ci/junit_summary.py "${reports[@]}" || summary_status=$?
if ((${#failed_stages[@]} > 0 || summary_status != 0)); then
  exit 1
fi
