#!/usr/bin/env bash
# run.sh - install dependencies, build, and run every test of rwgate through
# ctest: unit tests, the in-process PromQL conformance runner, and the
# end-to-end tests against real Prometheus / promtool on 127.0.0.1.
# Exits non-zero on any failure.
#   RWGATE_TEST_FILTER=regex   run only matching tests (ctest -R)
#   RWGATE_SKIP_ASAN=1         skip the AddressSanitizer pass of the unit tests
#   RWGATE_SKIP_TSAN=1         skip the ThreadSanitizer pass of the concurrency tests
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"

filter=()
if [ -n "${RWGATE_TEST_FILTER:-}" ]; then
  filter=(-R "$RWGATE_TEST_FILTER")
fi
status=0
(cd build && ctest --output-on-failure --timeout 900 "${filter[@]}") || status=1

# The unit tests once more under AddressSanitizer + UBSan: memory errors in
# decoders and the store must fail the suite, not just crash in production.
if [ -z "${RWGATE_SKIP_ASAN:-}" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRWGATE_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -L unit "${filter[@]}") || status=1
fi

# The concurrency test (writes, every read path, racing reloads, frequent
# checkpoints at once) once more against a
# ThreadSanitizer build: a data race report in its log (or TSan's exit code)
# fails it.
if [ -z "${RWGATE_SKIP_TSAN:-}" ]; then
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRWGATE_TSAN=ON -DRWGATE_UI=OFF >/dev/null
  cmake --build build-tsan -j"$jobs" --target rwgate
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=0 ctest --output-on-failure --timeout 900 -L e2e \
     -R 'e2e_test_concurrency$') || status=1
fi

exit $status
