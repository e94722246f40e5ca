#!/bin/sh
# Install every Debian package the build, the tests and the demo need;
# `deps.sh fuzz` adds clang and its libFuzzer runtime for `make fuzz`.
# Idempotent: when all are present it does nothing (one dpkg-query call).
set -eu

PACKAGES="gcc make pkg-config libc6-dev
libyaml-dev libsqlite3-dev libjq-dev libonig-dev libcurl4-openssl-dev
libssh2-1-dev libpcre2-dev libmicrohttpd-dev libssl-dev libpq-dev
sqlite3 jq python3 python3-jsonschema python3-yaml openssl
openssh-server openssh-client postgresql procps passwd tzdata
chromium chromium-driver python3-selenium"
[ "${1:-}" = fuzz ] && PACKAGES="$PACKAGES clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
