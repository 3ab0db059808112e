#!/usr/bin/env bash
# Runs every suite, even after one fails, and prints one summary line:
#   "N passed, N failed, N skipped"
# Exits non-zero if anything failed (or could not run).
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
broken=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

add_counts() { # <suite> <passed> <failed> <skipped>
  passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + $4))
  printf '== %-14s %s passed, %s failed, %s skipped\n' "$1:" "$2" "$3" "$4"
}

# 1. Formatting and lints: a failure counts as one failed check.
echo "== lint: cargo fmt --check, cargo clippy -D warnings"
if cargo fmt --all -- --check >"$log_dir/fmt.log" 2>&1 \
   && cargo clippy --workspace --all-targets --locked -- -D warnings >"$log_dir/clippy.log" 2>&1; then
  add_counts lint 1 0 0
else
  cat "$log_dir/fmt.log" "$log_dir/clippy.log" 2>/dev/null | tail -60
  add_counts lint 0 1 0; broken+=(lint)
fi

# 2. Rust: unit, integration and end-to-end tests (nextest when available).
echo "== rust: workspace tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final 2>&1 | tee "$log_dir/rust.log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E 'Summary \[' "$log_dir/rust.log" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  # Doc tests are not run by nextest.
  cargo test --workspace --locked --doc 2>&1 | tee "$log_dir/doc.log" >/dev/null
  drc=${PIPESTATUS[0]}
  dp=$(grep -E '^test result' "$log_dir/doc.log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  df=$(grep -E '^test result' "$log_dir/doc.log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  p=$((p + ${dp:-0})); f=$((f + ${df:-0}))
  if [ "$drc" -ne 0 ] && [ "${df:-0}" -eq 0 ]; then f=$((f + 1)); fi
else
  cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log_dir/rust.log"
  rc=${PIPESTATUS[0]}
  p=$(grep -E '^test result' "$log_dir/rust.log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  f=$(grep -E '^test result' "$log_dir/rust.log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  s=$(grep -E '^test result' "$log_dir/rust.log" | grep -oE '[0-9]+ ignored' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
fi
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi # a build failure counts too
add_counts rust "${p:-0}" "${f:-0}" "${s:-0}"
[ "${f:-0}" -eq 0 ] || broken+=(rust)

# 3. The official AG-UI clients (1.0 and CopilotKit's 0.0.59) against the live server and a
#    real OpenID provider.
echo "== conformance: @ag-ui/client 1.0.0 and 0.0.59 against the live server"
node tests/conformance/run.mjs 2>&1 | tee "$log_dir/conformance.log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^conformance: [0-9]+ passed, [0-9]+ failed' "$log_dir/conformance.log" | tail -1)
p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi
add_counts conformance "${p:-0}" "${f:-0}" "${s:-0}"
[ "${f:-0}" -eq 0 ] || broken+=(conformance)

# 4. The CopilotKit sample app: the demo IdP, the runtime hop's contract, and a real browser.
echo "== web: CopilotKit sample app (IdP demo, type checks, direct and hop contracts, Chromium e2e)"
node web/e2e/run.mjs 2>&1 | tee "$log_dir/web.log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^web: [0-9]+ passed, [0-9]+ failed' "$log_dir/web.log" | tail -1)
p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi
add_counts web "${p:-0}" "${f:-0}" "${s:-0}"
[ "${f:-0}" -eq 0 ] || broken+=(web)

# 5. `make run` right after `make test` compiles nothing: its build is the same invocation
#    (Makefile `build`), so a change that gives it another feature set shows up here.
echo "== build-reuse: make run's build after make test's compiles nothing"
# The cargo commands `make run` would run, run for real (make -n only prints them).
run_builds=$(make --no-print-directory -n run | grep -E '^cargo ' || true)
rc=0
if [ -z "$run_builds" ]; then echo "make -n run shows no cargo build" >"$log_dir/reuse.log"; rc=1; fi
while IFS= read -r cmd; do
  [ -n "$cmd" ] || continue
  echo "+ $cmd" >>"$log_dir/reuse.log"
  bash -c "$cmd" >>"$log_dir/reuse.log" 2>&1 || rc=1
done <<<"$run_builds"
if [ "$rc" -eq 0 ] && ! grep -qE '^\s*Compiling ' "$log_dir/reuse.log"; then
  add_counts build-reuse 1 0 0
else
  grep -E 'Compiling|error' "$log_dir/reuse.log" | head -20
  add_counts build-reuse 0 1 0; broken+=(build-reuse)
fi

echo
if [ ${#broken[@]} -gt 0 ]; then echo "FAILED suites: ${broken[*]}"; fi
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
