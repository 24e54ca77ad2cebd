#!/usr/bin/env bash
# Builds the libFuzzer target for the mock's scenario and control-file parsers (clang, ASan + UBSan) and
# runs it for a bounded time from the seed corpus in fuzz-corpus/ (new inputs go to a scratch copy).
#
#   native/mock/test/run_fuzz.sh [seconds, default 60] [output dir]
#
# Needs clang (Debian: apt-get install clang; .ci/run installs it). Fails on a crash, a sanitizer
# report, an uncaught exception, a leak, or an input slower than 10 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
seconds="${1:-60}"
out="${2:-$(mktemp -d)}"
CLANGXX="${CLANGXX:-clang++}"
if ! command -v "$CLANGXX" > /dev/null; then
  echo "run_fuzz: $CLANGXX not found (install the Debian package clang)" >&2
  exit 1
fi
mkdir -p "$out/corpus"
cp "$here"/fuzz-corpus/* "$out/corpus/"
"$CLANGXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/native" "$here/fuzz_scenario.cc" "$root/native/mock/json.cc" "$root/native/mock/catalog.cc" \
  "$root/native/mock/scenario.cc" "$root/native/mock/scenario_checks.cc" "$root/native/mock/scenario_fields.cc" -o "$out/fuzz_scenario"
echo "== fuzzing the scenario and control-file parsers for ${seconds}s"
ASAN_OPTIONS=detect_leaks=1 "$out/fuzz_scenario" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
  -print_final_stats=1 "$out/corpus"
