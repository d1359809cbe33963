#!/usr/bin/env bash
# Builds the HTTP/1.1 codec fuzzer (libFuzzer + ASan + UBSan, Debian's clang) from the few
# sources it needs, then runs it. No second CMake build: one clang++ command, skipped when the
# binary is newer than every source.
# Usage: scripts/fuzz.sh [--seconds N] [--out DIR] [--build-only]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
out="$root/build/fuzz"
build_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cxx=${FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: $cxx not found (make setup installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

srcs=(mesh/network/buffer.cc mesh/codec/message.cc mesh/codec/http1/http1_codec.cc
      mesh/codec/http1/http1_fuzz.cc)
deps=("${srcs[@]}" mesh/network/buffer.h mesh/codec/message.h mesh/codec/codec.h
      mesh/codec/http1/http1_codec.h common/assert.h scripts/fuzz.sh)
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin="$out/http1_fuzz"

stale=0
if [ ! -x "$bin" ]; then
  stale=1
else
  for f in "${deps[@]}"; do
    if [ "$root/$f" -nt "$bin" ]; then
      stale=1
      break
    fi
  done
fi
if [ "$stale" -eq 1 ]; then
  echo "fuzz.sh: building $bin"
  # One object per source, compiled in parallel; then one link.
  pids=()
  objs=()
  for src in "${srcs[@]}"; do
    obj="$out/$(basename "${src%.cc}").o"
    objs+=("$obj")
    "$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -I"$root" $(pkg-config --cflags absl_status absl_statusor) \
      -c "$root/$src" -o "$obj" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid"
  done
  "$cxx" -fsanitize=fuzzer,address,undefined "${objs[@]}" -o "$bin.tmp" \
    $(pkg-config --libs absl_status absl_statusor) -lhttp_parser
  mv "$bin.tmp" "$bin"
fi
if [ "$build_only" -eq 1 ]; then
  exit 0
fi

# New inputs go to the work corpus; the seed corpus in the tree is only read.
mkdir -p "$out/corpus"
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/" "$out/corpus" "$root/mesh/codec/http1/fuzz_corpus"
