#!/bin/sh
# What make bench drives besides the test tools: dnsperf, and the peers it measures gslb
# against (PowerDNS with its bind backend, gdnsd). From Debian, only when missing; the
# packages' own services are kept from starting (the bench starts its own, on loopback).
set -eu
need=""
command -v dnsperf >/dev/null 2>&1 || need="$need dnsperf"
command -v pdns_server >/dev/null 2>&1 || need="$need pdns-server"
[ -e /usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so ] || ls /usr/lib/*/pdns/libbindbackend.so >/dev/null 2>&1 || need="$need pdns-backend-bind"
command -v gdnsd >/dev/null 2>&1 || need="$need gdnsd"
command -v taskset >/dev/null 2>&1 || need="$need util-linux"
command -v cc >/dev/null 2>&1 || need="$need gcc"  # bench/udpio.py's C servers
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "make bench needs:$need (install them, or run it as root on Debian)" >&2
    exit 1
fi
echo "installing:$need"
apt-get update -qq
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
