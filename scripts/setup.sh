#!/usr/bin/env bash
# Installs the Debian packages Ottava builds, tests and benchmarks with (DESIGN.md §3).
# Idempotent: when everything is present it only runs dpkg-query and returns in well under a second.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libhiredis-dev librdkafka-dev libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev
  libevent-dev libhttp-parser-dev libcli11-dev wabt
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server nghttp2-client curl kcat
  clang libclang-rt-14-dev
  nginx haproxy wrk
)
# Packages whose Debian install enables a system service; the benchmarks start their own instances
# on free ports, so a freshly installed daemon is stopped and disabled (it would hold port 80).
daemons=(nginx haproxy)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
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
