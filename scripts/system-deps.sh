#!/usr/bin/env bash
# Installs the Debian packages the tests use, when they are missing and we may (root with
# apt-get): mosquitto (the real broker the tests start), nats-server (the 3-node NATS
# JetStream cluster of tests/test_nats_*.py), nodejs/npm (the TimescaleDB
# conformance tier; axe-core for the pages' accessibility tests) and chromium/chromium-driver
# (the pages' browser tests). Elsewhere it says what is missing; the tests then skip with a reason.
set -euo pipefail

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (Debian packages) ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "note: ${missing[*]} not installed; tests that need them will be skipped" \
         "(install with: sudo apt-get install ${missing[*]})"
fi
