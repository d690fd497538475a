#!/usr/bin/env bash
# Build (once) a minimal Debian sid chroot with Asterisk in it, for the end-to-end tests.
# Debian ships Asterisk only in sid. The chroot is cached outside the repository:
#   ${DIALER_GATEWAY_ASTERISK_CHROOT:-/var/cache/dialer-gateway/asterisk-sid}
# Idempotent: a finished chroot carries a stamp file and is reused. Concurrent runs
# wait for each other (flock). Mirror: ${DEBIAN_MIRROR:-http://deb.debian.org/debian}.
# Exit codes: 0 ready, 3 not root (the tests then skip, or fail under CI=true).
set -euo pipefail
DIR="${DIALER_GATEWAY_ASTERISK_CHROOT:-/var/cache/dialer-gateway/asterisk-sid}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STAMP="$DIR/.dialer-gateway-ready"
ready() { [ -f "$STAMP" ] && [ -x "$DIR/usr/sbin/asterisk" ]; }
if ready; then
    echo "asterisk chroot ready at $DIR"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "building the asterisk chroot needs root (sudo make e2e-chroot)" >&2
    exit 3
fi
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if ready; then  # built by a concurrent run while we waited
    echo "asterisk chroot ready at $DIR"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
TMP="$DIR.partial"
rm -rf "$TMP"
trap 'rm -rf "$TMP"' ERR
debootstrap --variant=minbase sid "$TMP" "$MIRROR"
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
# the tests need these modules (tests/e2e/asterisk_conf.py MODULES)
for m in res_agi res_speech pbx_config app_dial app_stack app_userevent func_timeout; do
    if [ -z "$(find "$TMP/usr/lib" -path '*/asterisk/modules/'"$m.so" -print -quit)" ]; then
        echo "asterisk module $m.so missing from the chroot" >&2
        exit 1
    fi
done
chroot "$TMP" /usr/sbin/asterisk -V
touch "$TMP/.dialer-gateway-ready"
rm -rf "$DIR"
mv "$TMP" "$DIR"
echo "asterisk chroot ready at $DIR"
