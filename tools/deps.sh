#!/bin/sh
# tools/deps.sh: installs the Debian packages the build and the tests need,
# when some are missing.  As root it runs apt-get (once per call, only for the
# missing ones); otherwise it names them and fails.  Used by `make run` and
# `make test`; safe to run again (a no-op when everything is there).
set -eu
PKGS="meson ninja-build pkg-config gcc make libuv1-dev libxxhash-dev liblz4-dev libcjson-dev \
libcurl4-openssl-dev libmongoc-dev libcmocka-dev libhttp-parser-dev libjemalloc-dev liburing-dev \
redis-server redis-tools redis-sentinel python3-redis python3-pytest python3-yaml nginx prometheus docker-compose openssl python3-jsonschema wrk"
# `make fuzz` needs clang and libFuzzer's runtime on top of the rest.
[ "${1:-}" = "--fuzz" ] && PKGS="$PKGS clang-14 libclang-rt-14-dev"
[ "${1:-}" = "--run-only" ] && PKGS="meson ninja-build pkg-config gcc make libuv1-dev libxxhash-dev liblz4-dev \
libcjson-dev libcurl4-openssl-dev libmongoc-dev libhttp-parser-dev libjemalloc-dev liburing-dev"

# The integration tests' MongoDB-wire peer (../shared/mongo-peer) runs on
# Node.js: a node already on PATH will do; Debian's only when there is none.
if [ "${1:-}" != "--run-only" ] && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
    PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "obentchi: missing Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install$missing" >&2
    exit 1
fi
echo "obentchi: installing$missing"
# Packages such as redis-server start their service on install where an init
# system runs; the tests start their own servers on free ports, so deny it.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
rc=0
apt-get install -y -q --no-install-recommends $missing >/dev/null || rc=$?
[ "$added_policy" = 1 ] && rm -f "$policy"
exit $rc
