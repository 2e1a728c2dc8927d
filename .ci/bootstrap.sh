#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, inside the repository where possible:
#   run   the AWS emulator (moto) into .venv, for `make run`;
#   test  also the linters, the SAM CLI with cargo-lambda, the Lago Python client and pytest into
#         .venv, the Lago JavaScript client into tests/clients/js/node_modules, and the arm64 Rust
#         target that `sam build` cross-compiles for.
# Idempotent: every step is skipped when what it would install is already there, so `make run`
# and `make test` can call it every time at almost no cost.
set -euo pipefail

mode="${1:-run}"
case "$mode" in
  run | test) ;;
  *)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'bootstrap: %s\n' "$*"; }

# --- Debian packages: only the ones this machine lacks, with one `apt-get update` first. -------
missing_debs=()
command -v make >/dev/null 2>&1 || missing_debs+=(make)
command -v curl >/dev/null 2>&1 || missing_debs+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || missing_debs+=(python3)
# Debian's own python3 ships venv without ensurepip; the python3-venv package restores it.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  missing_debs+=(python3-venv)
fi
if [[ "$mode" == test ]]; then
  command -v node >/dev/null 2>&1 || missing_debs+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing_debs+=(npm)
fi
if ((${#missing_debs[@]} > 0)); then
  log "installing Debian packages: ${missing_debs[*]}"
  sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing_debs[@]}"
fi

# --- Python tools in a project-local virtualenv. --------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  python3 -m venv .venv
fi

# A stamp records what was installed: the requirement files and the interpreter. When both
# are unchanged, pip (which takes seconds even when there is nothing to do) is skipped.
stamp_of() {
  local files=(.ci/requirements-run.txt)
  [[ "$1" == test ]] && files+=(.ci/requirements-test.txt)
  { cat "${files[@]}"; .venv/bin/python --version; } | sha256sum | cut -d' ' -f1
}
is_current() { [[ -f ".venv/.bootstrap-$1" && "$(cat ".venv/.bootstrap-$1")" == "$(stamp_of "$1")" ]]; }
stamp=".venv/.bootstrap-$mode"
wanted="$(stamp_of "$mode")"
# The test requirements include the run ones, so a current test install covers `run` too.
if is_current "$mode" || { [[ "$mode" == run ]] && is_current test; }; then
  log ".venv is up to date for '$mode'"
else
  # requirements-test.txt includes requirements-run.txt.
  log "installing .ci/requirements-$mode.txt into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r ".ci/requirements-$mode.txt"
  printf '%s\n' "$wanted" >"$stamp"
fi

[[ "$mode" == test ]] || exit 0

# --- Rust: the arm64 target for `sam build`, and the test runner. ---------------------------
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding the Rust target aarch64-unknown-linux-gnu (Lambda runs on arm64)"
  rustup target add aarch64-unknown-linux-gnu
fi
for component in clippy rustfmt; do
  if ! rustup component list --installed | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# --- The Lago JavaScript client, exactly as locked. ------------------------------------------
js_dir=tests/clients/js
# `npm ci` deletes node_modules first, so a stamp kept inside it cannot outlive the install.
js_stamp="$js_dir/node_modules/.bootstrap-lock"
js_wanted="$(sha256sum "$js_dir/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$js_stamp" && "$(cat "$js_stamp")" == "$js_wanted" ]]; then
  log "$js_dir/node_modules is up to date"
else
  log "npm ci in $js_dir"
  (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$js_wanted" >"$js_stamp"
fi
