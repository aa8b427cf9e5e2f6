#!/usr/bin/env bash
# run.sh - install dependencies, build, and run every test of rwgate; exits
# non-zero on any failure. Everything it runs reads only the repository.
#   1. the Release build through ctest: unit tests, the in-process PromQL
#      conformance runner, the end-to-end tests against real Prometheus,
#      promtool and etcd on 127.0.0.1;
#   2. a sanitizer build (AddressSanitizer + UBSan, leak detection on): the
#      unit tests again, and the end-to-end tests named by RWGATE_ASAN_E2E
#      against the sanitized binary (a clean shutdown must free everything);
#   3. the libFuzzer targets (clang, build-fuzz/), each run for a bounded time
#      over its seed corpus tests/fuzz/corpus/<target>; a crash, a leak or a
#      timeout fails.
# Environment:
#   RWGATE_TEST_FILTER=regex   run only matching tests (ctest -R) in 1 and 2
#   RWGATE_SKIP_ASAN=1         skip pass 2
#   RWGATE_ASAN_E2E=regex      e2e tests of pass 2 (default: see below; "" = none)
#   RWGATE_SKIP_FUZZ=1         skip pass 3
#   RWGATE_FUZZ_SECONDS=N      seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
jobs=$(nproc)
status=0
start=$SECONDS
phase() { echo "run.sh: $1 ($((SECONDS - start)) s so far)"; }

filter=()
if [ -n "${RWGATE_TEST_FILTER:-}" ]; then
  filter=(-R "$RWGATE_TEST_FILTER")
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
phase "release build done"
(cd build && ctest --output-on-failure --timeout 900 "${filter[@]}") || status=1
phase "release tests done"

# Memory errors and leaks in decoders, the store and the binary must fail the
# suite, not just crash or grow in production.
if [ -z "${RWGATE_SKIP_ASAN:-}" ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRWGATE_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ctest --output-on-failure -L unit "${filter[@]}") || status=1
  asan_e2e=${RWGATE_ASAN_E2E-e2e_test_(write_path|ops|storage_busy|crash_recovery|sigterm_inflight|query_limits|retention|promql_conformance_http)\$}
  if [ -n "$asan_e2e" ]; then
    (cd build-asan && ctest --output-on-failure --timeout 900 -L e2e -R "$asan_e2e" "${filter[@]}") || status=1
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
  phase "sanitizer pass done"
fi

if [ -z "${RWGATE_SKIP_FUZZ:-}" ]; then
  secs=${RWGATE_FUZZ_SECONDS:-20}
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DRWGATE_FUZZ=ON >/dev/null
  targets=()
  for f in tests/fuzz/fuzz_*.c; do
    targets+=("$(basename "$f" .c)")
  done
  cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"
  for t in "${targets[@]}"; do
    seeds=tests/fuzz/corpus/$t
    out=build-fuzz/fuzz-out/$t
    rm -rf "$out"
    mkdir -p "$out"
    if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
      echo "FAIL $t: no seed corpus in $seeds"
      status=1
      continue
    fi
    # new inputs go to $out (the first directory), the committed seeds stay as they are
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
        "build-fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/" "$out" "$seeds" >"$out/log" 2>&1; then
      echo "fuzz $t: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$out/log" | tail -1), no crash"
    else
      echo "FAIL fuzz $t: crash, leak or timeout; input and log in $out"
      tail -40 "$out/log"
      status=1
    fi
  done
  phase "fuzz pass done"
fi

phase "finished with status $status"
exit $status
