#!/usr/bin/env bash
# Builds a codec fuzzer (libFuzzer + ASan + UBSan, Debian's clang) from the few sources it
# needs, then runs it. Targets: http1 (default), bolt, dubbo. No second CMake build: one clang++ command, skipped when the
# binary is newer than every source.
# Usage: scripts/fuzz.sh [--target http1|bolt|dubbo] [--seconds N] [--out DIR] [--build-only]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
out="$root/build/fuzz"
build_only=0
target=http1
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
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

common_srcs=(mesh/network/buffer.cc mesh/codec/message.cc)
common_deps=(mesh/network/buffer.h mesh/codec/message.h mesh/codec/codec.h common/assert.h
             scripts/fuzz.sh)
libs=()
case "$target" in
  http1)
    srcs=("${common_srcs[@]}" mesh/codec/http1/http1_codec.cc mesh/codec/http1/http1_fuzz.cc)
    deps=("${srcs[@]}" "${common_deps[@]}" mesh/codec/http1/http1_codec.h)
    libs=(-lhttp_parser) ;;
  bolt)
    srcs=("${common_srcs[@]}" mesh/codec/bolt/bolt_frame.cc mesh/codec/bolt/bolt_codec.cc
          mesh/codec/bolt/bolt_fuzz.cc)
    deps=("${srcs[@]}" "${common_deps[@]}" mesh/codec/bolt/bolt_frame.h mesh/codec/bolt/bolt_codec.h)
    libs=(-lz) ;;
  dubbo)
    srcs=("${common_srcs[@]}" mesh/codec/dubbo/hessian2.cc mesh/codec/dubbo/dubbo_frame.cc
          mesh/codec/dubbo/dubbo_codec.cc mesh/codec/dubbo/dubbo_fuzz.cc)
    deps=("${srcs[@]}" "${common_deps[@]}" mesh/codec/dubbo/hessian2.h
          mesh/codec/dubbo/dubbo_frame.h mesh/codec/dubbo/dubbo_codec.h) ;;
  *) echo "fuzz.sh: unknown target $target (http1, bolt or dubbo)" >&2; exit 2 ;;
esac
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin="$out/${target}_fuzz"

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
    obj="$out/${target}_$(basename "${src%.cc}").o"
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
    $(pkg-config --libs absl_status absl_statusor) "${libs[@]}"
  mv "$bin.tmp" "$bin"
fi
if [ "$build_only" -eq 1 ]; then
  exit 0
fi

# New inputs go to the work corpus; the seed corpus in the tree is only read.
mkdir -p "$out/corpus-$target"
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/$target-" "$out/corpus-$target" "$root/mesh/codec/$target/fuzz_corpus"
