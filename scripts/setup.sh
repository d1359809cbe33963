#!/usr/bin/env bash
# Installs the Debian packages Ottava builds, tests and benchmarks with (DESIGN.md §3).
# Idempotent: when everything is present it only runs dpkg-query and returns in well under a second.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libhiredis-dev librdkafka-dev libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev
  libevent-dev libhttp-parser-dev libcli11-dev libyaml-cpp-dev wabt
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server nghttp2-client curl kcat
  clang libclang-rt-14-dev
  nginx haproxy wrk
  libjemalloc-dev
  nodejs
)
# Debian splits npm from nodejs; a nodejs from elsewhere (NodeSource) bundles npm and conflicts
# with Debian's, so the package is wanted only when no npm is on the PATH.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
# Packages whose Debian install enables a system service; the benchmarks start their own instances
# on free ports, so a freshly installed daemon is stopped and disabled (it would hold port 80).
daemons=(nginx haproxy)

# npm test peers (section of its own): every test/interop/*/package-lock.json is installed with
# `npm ci` into that folder's node_modules. A stamp inside node_modules holds the lockfile's sha256,
# so a folder whose lockfile did not change since its last install costs one sha256sum. Runs after
# the Debian packages, which bring nodejs and npm.
install_npm_peers() {
  local root lock dir want have
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  for lock in "$root"/test/interop/*/package-lock.json; do
    [ -f "$lock" ] || continue
    dir=$(dirname "$lock")
    want=$(sha256sum "$lock" | cut -d' ' -f1)
    have=$(cat "$dir/node_modules/.ottava-lock-sha256" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
      continue
    fi
    echo "setup.sh: npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$dir/node_modules/.ottava-lock-sha256"
  done
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  install_npm_peers
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# redis-server is started by the tests on free ports; the distribution's service is not needed.

# Only the daemons installed just now: an nginx or HAProxy the machine already ran is left alone.
for d in "${daemons[@]}"; do
  case " ${missing[*]} " in
    *" $d "*) ;;
    *) continue ;;
  esac
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now "$d" >/dev/null 2>&1 || true
  else
    $SUDO service "$d" stop >/dev/null 2>&1 || true
    $SUDO update-rc.d "$d" disable >/dev/null 2>&1 || true
  fi
done

install_npm_peers
