#!/usr/bin/env bash
# Builds the mock NVML library (normal, legacy, ASan+UBSan) and runs mock_selftest against each,
# plus valgrind on the normal build and a check of the exported symbols.
#
#   native/mock/test/run_selftest.sh [output dir]      (default: /tmp/vramguard-mock-selftest)
#
# Environment: CXX, CC (default g++, gcc); SKIP_VALGRIND=1; SKIP_SANITIZERS=1 (ASan/UBSan and TSan).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-/tmp/vramguard-mock-selftest}"
CXX="${CXX:-g++}"
CC="${CC:-gcc}"
mkdir -p "$out"/{normal,legacy,asan,tsan}

sources=("$root"/native/mock/*.cc)
cxxflags=(-std=c++17 -fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra -Werror
          -I"$root/native" -pthread "-Wl,--version-script=$root/native/mock/exports.map")
cflags=(-std=c11 -Wall -Wextra -Werror -I"$root/native" -pthread)
scenarios="$here/scenarios"

step() { printf '\n== %s\n' "$*"; }

step "build: normal, legacy (VG_MOCK_LEGACY_SYMBOLS=1)"
"$CXX" "${cxxflags[@]}" -O2 "${sources[@]}" -o "$out/normal/libnvidia-ml.so.1"
"$CXX" "${cxxflags[@]}" -O2 -DVG_MOCK_LEGACY_SYMBOLS=1 "${sources[@]}" -o "$out/legacy/libnvidia-ml.so.1"
"$CC" "${cflags[@]}" -O1 -g "$here/mock_selftest.c" -o "$out/mock_selftest" -ldl

step "exported symbols"
expected_symbols() {
  sed -n 's/^  X([A-Z]*, \(nvml[A-Za-z0-9_]*\),.*/\1/p' "$root/native/nvml_api.h"
  printf '%s\n' nvmlErrorString vramguardMockInitError vramguardMockWarnings vramguardMockIsMock
}
expected_symbols | sort > "$out/expected-symbols.txt"
nm -D --defined-only "$out/normal/libnvidia-ml.so.1" | awk '{print $3}' | sort > "$out/normal-symbols.txt"
diff -u "$out/expected-symbols.txt" "$out/normal-symbols.txt"
grep -Ev '(_v2|_v3)$' "$out/expected-symbols.txt" | cat - <(grep -E '^(nvmlInit_v2|nvmlDeviceGetCount_v2|nvmlDeviceGetHandleByIndex_v2|nvmlDeviceGetPciInfo_v3)$' "$out/expected-symbols.txt") \
  | sort > "$out/expected-legacy-symbols.txt"
nm -D --defined-only "$out/legacy/libnvidia-ml.so.1" | awk '{print $3}' | sort > "$out/legacy-symbols.txt"
diff -u "$out/expected-legacy-symbols.txt" "$out/legacy-symbols.txt"
echo "normal: $(wc -l < "$out/normal-symbols.txt") symbols, legacy: $(wc -l < "$out/legacy-symbols.txt"), as expected"

step "selftest: normal"
"$out/mock_selftest" "$out/normal/libnvidia-ml.so.1" "$scenarios"
step "selftest: legacy"
"$out/mock_selftest" "$out/legacy/libnvidia-ml.so.1" "$scenarios" --legacy

if [[ "${SKIP_SANITIZERS:-0}" != 1 ]]; then
  step "selftest: ASan + UBSan"
  san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1)
  "$CXX" "${cxxflags[@]}" "${san[@]}" "${sources[@]}" -o "$out/asan/libnvidia-ml.so.1"
  "$CC" "${cflags[@]}" "${san[@]}" "$here/mock_selftest.c" -o "$out/asan/mock_selftest" -ldl
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/asan/mock_selftest" "$out/asan/libnvidia-ml.so.1" "$scenarios"

  step "selftest: TSan"
  tsan=(-fsanitize=thread -g -O1)
  "$CXX" "${cxxflags[@]}" "${tsan[@]}" "${sources[@]}" -o "$out/tsan/libnvidia-ml.so.1"
  "$CC" "${cflags[@]}" "${tsan[@]}" "$here/mock_selftest.c" -o "$out/tsan/mock_selftest" -ldl
  TSAN_OPTIONS=halt_on_error=1 "$out/tsan/mock_selftest" "$out/tsan/libnvidia-ml.so.1" "$scenarios"
fi

if [[ "${SKIP_VALGRIND:-0}" != 1 ]] && command -v valgrind > /dev/null; then
  step "selftest: valgrind (normal build)"
  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --trace-children=no \
    "$out/mock_selftest" "$out/normal/libnvidia-ml.so.1" "$scenarios"
fi

step "all passed"
