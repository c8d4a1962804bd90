#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages the lab needs.
#   deps.sh check    exit 1 with the apt-get line if a package needed to compile is missing
#   deps.sh install  apt-get install whatever is missing (root), else print it
set -euo pipefail

BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libcjson-dev librdkafka-dev
  libhiredis-dev libpq-dev libjwt-dev libcurl4-openssl-dev libssl-dev
  libsodium-dev libcmocka-dev"
RUN_PKGS="postgresql redis-server supervisor prometheus curl jq procps iproute2 gettext-base"
TOOL_PKGS="wrk nginx-light valgrind cppcheck clang clang-format libclang-rt-14-dev prometheus-alertmanager"

missing() { # [build]: only what compiling needs
    local p pkgs="$BUILD_PKGS $RUN_PKGS $TOOL_PKGS"
    [ "${1:-}" = build ] && pkgs=$BUILD_PKGS
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
    # Node.js only validates infrastructure files offline; any install will do.
    [ "${1:-}" = build ] || command -v node >/dev/null 2>&1 || echo "nodejs npm"
}

case "${1:-check}" in
check)
    m=$(missing build | tr '\n' ' ')
    [ -z "$m" ] && exit 0
    echo "missing packages: run 'make deps' or: sudo apt-get install -y $m" >&2
    exit 1 ;;
install)
    m=$(missing | tr '\n' ' ')
    [ -z "$m" ] && exit 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages; as root run: apt-get update && apt-get install -y $m" >&2
        exit 1
    fi
    echo "installing: $m"
    export DEBIAN_FRONTEND=noninteractive
    # The packaged daemons must not grab the lab's ports at install time.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $m >/dev/null
    rm -f /usr/sbin/policy-rc.d ;;
*)
    echo "usage: deps.sh check|install" >&2; exit 2 ;;
esac
