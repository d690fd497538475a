#!/usr/bin/env bash
# Build (once) a minimal Debian sid chroot with Asterisk in it, for the end-to-end tests.
# Debian ships Asterisk only in sid. The chroot is cached outside the repository:
#   ${DIALER_GATEWAY_ASTERISK_CHROOT:-/var/cache/dialer-gateway/asterisk-sid}
# Idempotent: a finished chroot carries a stamp file and is reused.
set -euo pipefail
DIR="${DIALER_GATEWAY_ASTERISK_CHROOT:-/var/cache/dialer-gateway/asterisk-sid}"
STAMP="$DIR/.dialer-gateway-ready"
if [ -f "$STAMP" ] && [ -x "$DIR/usr/sbin/asterisk" ]; then
    echo "asterisk chroot ready at $DIR"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "building the asterisk chroot needs root" >&2
    exit 3
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mkdir -p "$(dirname "$DIR")"
TMP="$DIR.partial"
rm -rf "$TMP"
debootstrap --variant=minbase sid "$TMP"
cp /etc/resolv.conf "$TMP/etc/resolv.conf" 2>/dev/null || true
# no service starts inside the chroot during install
printf '#!/bin/sh\nexit 101\n' > "$TMP/usr/sbin/policy-rc.d"
chmod +x "$TMP/usr/sbin/policy-rc.d"
chroot "$TMP" apt-get -o Acquire::Check-Valid-Until=false update -qq
DEBIAN_FRONTEND=noninteractive chroot "$TMP" apt-get -o Acquire::Check-Valid-Until=false \
    install -y -qq --no-install-recommends asterisk asterisk-modules
chown -R root:root "$TMP/etc/asterisk" "$TMP/var/lib/asterisk" "$TMP/var/spool/asterisk" \
    "$TMP/var/log/asterisk" "$TMP/usr/share/asterisk" 2>/dev/null || true
chroot "$TMP" apt-get clean
touch "$TMP/.dialer-gateway-ready"
rm -rf "$DIR"
mv "$TMP" "$DIR"
echo "asterisk chroot ready at $DIR"
