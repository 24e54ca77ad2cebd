#!/usr/bin/env bash
# Builds the mock NVML library for every driver era (normal and ASan+UBSan; TSan for era 580) and runs
# mock_selftest against each,
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
mkdir -p "$out"/{normal,asan,tsan}

core=()
for f in "$root"/native/mock/*.cc; do [[ "$f" == */era.cc ]] || core+=("$f"); done  # entry_*.inc: in era.cc
cxxflags=(-std=c++17 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra -Werror -I"$root/native" -pthread)
ldflags=(-shared -pthread "-Wl,--version-script=$root/native/mock/exports.map")
cflags=(-std=c11 -Wall -Wextra -Werror -I"$root/native" -pthread)
scenarios="$here/scenarios"
# name:VG_MOCK_BUILD_ERA, as native/sources.json lists them
eras=$(node -e 'const e=require(process.argv[1]).mockEras;console.log(Object.entries(e).map(([k,v])=>k+":"+v).join(" "))' "$root/native/sources.json")

step() { printf '\n== %s\n' "$*"; }

# build_eras <dir> <extra flags...>: the core as a static archive, then one library per era.
build_eras() {
  local dir="$1"; shift
  mkdir -p "$dir/obj"
  local objects=()
  for f in "${core[@]}"; do
    local o="$dir/obj/$(basename "$f" .cc).o"
    "$CXX" "${cxxflags[@]}" "$@" -c "$f" -o "$o" &
    objects+=("$o")
  done
  wait
  rm -f "$dir/libcore.a"
  ar rcs "$dir/libcore.a" "${objects[@]}"
  for pair in $eras; do
    local name="${pair%%:*}" number="${pair##*:}"
    mkdir -p "$dir/$name"
    "$CXX" "${cxxflags[@]}" "$@" -DVG_MOCK_BUILD_ERA="$number" -c "$root/native/mock/era.cc" -o "$dir/obj/era-$name.o"
    "$CXX" "${ldflags[@]}" "$@" "$dir/obj/era-$name.o" "$dir/libcore.a" -o "$dir/$name/libnvidia-ml.so.1"
  done
}

step "build: every driver era"
build_eras "$out/normal" -O2
"$CC" "${cflags[@]}" -O1 -g "$here/mock_selftest.c" -o "$out/mock_selftest" -ldl

step "exported symbols: nothing but NVML functions and the vramguardMock* extensions"
for pair in $eras; do
  name="${pair%%:*}"
  nm -D --defined-only "$out/normal/$name/libnvidia-ml.so.1" | awk '{print $3}' | grep -Ev '^(nvml|vramguardMock)' \
    && { echo "era $name exports symbols that are not NVML's"; exit 1; }
  echo "era $name: $(nm -D --defined-only "$out/normal/$name/libnvidia-ml.so.1" | wc -l) symbols"
done

for pair in $eras; do
  name="${pair%%:*}"
  step "selftest: era $name"
  "$out/mock_selftest" "$out/normal/$name/libnvidia-ml.so.1" "$scenarios" --era "$name"
done

if [[ "${SKIP_SANITIZERS:-0}" != 1 ]]; then
  step "selftest: ASan + UBSan"
  san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1)
  build_eras "$out/asan" "${san[@]}"
  "$CC" "${cflags[@]}" "${san[@]}" "$here/mock_selftest.c" -o "$out/asan/mock_selftest" -ldl
  for pair in $eras; do
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$out/asan/mock_selftest" "$out/asan/${pair%%:*}/libnvidia-ml.so.1" "$scenarios" --era "${pair%%:*}"
  done

  step "selftest: TSan"
  tsan=(-fsanitize=thread -g -O1)
  mkdir -p "$out/tsan/obj"
  "$CXX" "${cxxflags[@]}" "${tsan[@]}" -DVG_MOCK_BUILD_ERA=580000 "${core[@]}" "$root/native/mock/era.cc" \
    "${ldflags[@]}" -o "$out/tsan/libnvidia-ml.so.1"
  "$CC" "${cflags[@]}" "${tsan[@]}" "$here/mock_selftest.c" -o "$out/tsan/mock_selftest" -ldl
  TSAN_OPTIONS=halt_on_error=1 "$out/tsan/mock_selftest" "$out/tsan/libnvidia-ml.so.1" "$scenarios"
fi

if [[ "${SKIP_VALGRIND:-0}" != 1 ]] && command -v valgrind > /dev/null; then
  step "selftest: valgrind (normal build)"
  # --fair-sched=yes: valgrind runs one thread at a time, and its default lock is unfair, so the
  # concurrent-calls test's busy callers could starve the thread that ends it (4 s one run, over 10 min
  # another); with a fair lock it takes about 4 s every time.
  valgrind --quiet --fair-sched=yes --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --trace-children=no \
    "$out/mock_selftest" "$out/normal/580/libnvidia-ml.so.1" "$scenarios"
fi

step "all passed"
