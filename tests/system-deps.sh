#!/bin/sh
# System tools the test suite drives for real. Installed from Debian only when missing, so a
# developer's machine is left alone once it has them. No test skips for a missing tool: without
# these the suite fails, loudly, here.
set -eu

need=""
command -v unbound >/dev/null 2>&1 || need="$need unbound"
command -v dig >/dev/null 2>&1 || need="$need dnsutils"
# delv, the DNSSEC tests' second validator, comes with bind9-dnsutils.
command -v delv >/dev/null 2>&1 || need="$need bind9-dnsutils"
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The dashboard's end-to-end tests drive Debian's Chromium through Playwright.
[ -x /usr/bin/chromium ] || need="$need chromium"
# The deploy files' tests: systemd-analyze verify on the units, docker-compose config on
# compose.yaml (no Docker daemon involved).
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v docker-compose >/dev/null 2>&1 || need="$need docker-compose"
# The compiled UDP loop (gslb/shell/_udploop.c) is built by pip with a C compiler and the
# interpreter's headers; tests/test_udp_loop.py runs it against the Python loop. The Makefile
# runs this script before pip.
command -v cc >/dev/null 2>&1 || need="$need gcc"
${PYTHON:-python3} -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need="$need python3-dev"
# promtool checks and unit-tests the alerting rules in deploy/prometheus/.
command -v promtool >/dev/null 2>&1 || need="$need prometheus"

[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "tests need:$need (install them, or run make test as root on Debian)" >&2
    exit 1
fi
echo "installing:$need"
apt-get update -qq
# The tests start their own unbound; keep the packages (unbound, prometheus) from starting
# system services.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
